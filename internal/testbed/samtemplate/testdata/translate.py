"""Translate a SAM template to plain CloudFormation JSON on stdout, offline.

Usage: python3 translate.py TEMPLATE

Local CodeUri values are replaced by s3://bucket/key first (the translator wants S3), and the
managed policy loader returns {} (it would otherwise ask IAM). Needs AWS_DEFAULT_REGION.
Exit status 3 means the samtranslator module is not installed.
"""
import json
import sys

try:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse
except ImportError as e:
    print(f"python3 cannot import samtranslator ({e}): install it with "
          "`pip install aws-sam-translator==1.110.0`", file=sys.stderr)
    sys.exit(3)


class NoManagedPolicies:
    def load(self):
        return {}


def main():
    with open(sys.argv[1]) as f:
        template = yaml_parse(f.read())
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    if "CodeUri" in globals_fn:
        globals_fn["CodeUri"] = "s3://bucket/key"
    for res in (template.get("Resources") or {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
