# Compiles the facts internal/ocsf's tests validate against from the OCSF schema source at one tag:
#   git clone https://github.com/ocsf/ocsf-schema && cd ocsf-schema
#   python3 .../compile_facts.py 1.3.0 > .../ocsf-1.3.0-facts.json
# (set SCHEMA_REPO to the clone; the default is this machine's mirror).
import json, os, subprocess, sys
TAG = sys.argv[1]
def load(p):
    return json.loads(subprocess.check_output(["git", "show", f"{TAG}:{p}"], cwd=os.environ.get("SCHEMA_REPO", ".")))
dic = load("dictionary.json")
cats = load("categories.json")["attributes"]
def merge(dst, src, profile=False):
    for k, v in src.items():
        if k == "$include":
            for inc in v:
                merge(dst, load(inc)["attributes"], profile or inc.startswith("profiles/"))
            continue
        cur = dict(dst.get(k, {}))
        enum = dict(cur.get("enum", {}))
        cur.update(v)
        if "enum" in v:
            enum.update(v["enum"]); cur["enum"] = enum
        if profile and k not in dst:
            cur["requirement"] = "optional"
        dst[k] = cur
def resolve(kind, name, path):
    d = load(path)
    attrs = {}
    ext = d.get("extends")
    if ext:
        if kind == "events":
            ep = {"base_event": "events/base_event.json", "finding": "events/findings/finding.json", "iam": "events/iam/iam.json"}[ext]
        else:
            ep = f"objects/{ext}.json"
        parent, attrs = resolve(kind, ext, ep)
        if "constraints" not in d and "constraints" in parent:
            d = dict(d, constraints=parent["constraints"])  # inherited unless its own
    merge(attrs, d.get("attributes", {}))
    return d, attrs
def attr_facts(attrs):
    out = {}
    for k, v in attrs.items():
        dd = dict(dic["attributes"].get(k, {}))
        if k in ("class_uid", "category_uid", "type_uid"):
            dd.pop("enum", None)
        enum = dict(dd.get("enum", {}))
        dd.update(v)
        if "enum" in v:
            enum.update(v["enum"]); dd["enum"] = enum
        t = dd.get("type")
        if t and not t.endswith("_t"):
            dd["object_type"], t = t, "object_t"
        f = {"requirement": dd.get("requirement", "optional"), "type": t}
        if dd.get("is_array"): f["is_array"] = True
        if t == "object_t": f["object_type"] = dd.get("object_type")
        if "enum" in dd: f["enum"] = sorted(int(x) if x.lstrip("-").isdigit() else x for x in dd["enum"].keys())
        if "sibling" in dd: f["sibling"] = dd["sibling"]
        out[k] = f
    return out
facts = {"version": TAG, "source": "github.com/ocsf/ocsf-schema tag " + TAG + " (compiled by docs/ocsf.md's recipe)", "classes": {}, "objects": {}, "types": {}}
for name, path, cat in [("detection_finding", "events/findings/detection_finding.json", "findings"), ("authentication", "events/iam/authentication.json", "iam")]:
    d, attrs = resolve("events", name, path)
    cu = cats[cat]["uid"]
    # The schema server fills these enums per class; the validator checks the values itself.
    for k in ("class_uid", "category_uid", "type_uid"):
        attrs[k] = {kk: vv for kk, vv in attrs[k].items() if kk != "enum"}
    facts["classes"][name] = {"class_uid": cu * 1000 + d["uid"], "category_uid": cu, "attributes": attr_facts(attrs)}
    if d.get("constraints"): facts["classes"][name]["constraints"] = d["constraints"]
todo = set()
def need(attrs):
    for a in attrs.values():
        if a["type"] == "object_t": todo.add(a["object_type"])
for c in facts["classes"].values(): need(c["attributes"])
done = set()
while todo - done:
    o = sorted(todo - done)[0]; done.add(o)
    try:
        d, attrs = resolve("objects", o, f"objects/{o}.json")
    except subprocess.CalledProcessError:
        continue
    fa = attr_facts(attrs); facts["objects"][o] = {"attributes": fa}; need(fa)
    if d.get("constraints"): facts["objects"][o]["constraints"] = d["constraints"]
for t, v in dic["types"]["attributes"].items():
    facts["types"][t] = {k: v[k] for k in ("type", "regex", "max_len", "range") if k in v}
json.dump(facts, sys.stdout, indent=1, sort_keys=True)
