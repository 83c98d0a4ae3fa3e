package devportal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Users and API keys (docspace-api.md §5.2, §9.2, §9.3).

// EmployeeStatus values of a user's "status".
const (
	StatusActive     = 1
	StatusTerminated = 2
	StatusPending    = 4
)

// Ids of the users every new portal has. OwnerID is the portal owner, who
// created the Options.AdminKeys; RegularUserID is a user without admin
// rights, who created the Options.UserKeys.
const (
	OwnerID       = "5f1e6a2b-0d3c-4e5f-8a9b-000000000001"
	RegularUserID = "5f1e6a2b-0d3c-4e5f-8a9b-000000000002"
)

// User is one portal user. Deleted users answer 404 (as unknown ids do) but
// are kept so that tests can tell them apart. A new portal has exactly one
// owner; IsAdmin is false for the owner, as on the real server.
type User struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Email       string `json:"email"`
	Status      int    `json:"status"` // StatusActive, StatusTerminated or StatusPending
	IsAdmin     bool   `json:"isAdmin"`
	IsOwner     bool   `json:"isOwner"`
	IsLDAP      bool   `json:"isLDAP"`
	IsSSO       bool   `json:"isSSO"`
	Deleted     bool   `json:"deleted"`
	// Type is the type of a user who is neither the owner nor an admin:
	// TypeUser ("" too), TypeGuest or TypeRoomAdmin. GET people/{id}
	// reports it as the real API does, by the flags isRoomAdmin,
	// isCollaborator ("User" since v3) and isVisitor (Guest).
	Type string `json:"type,omitempty"`
}

// The types of User.Type.
const (
	TypeUser      = "user"
	TypeGuest     = "guest"
	TypeRoomAdmin = "room_admin"
)

// APIKey is one API key. Key is the secret the caller sends; KeyPostfix its
// last four characters unless set otherwise. ExpiresAt nil means it never
// expires; an inactive or expired key, or one whose creator is terminated or
// deleted, answers 401 on every call.
type APIKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Key         string     `json:"key"`
	KeyPostfix  string     `json:"keyPostfix"`
	Permissions []string   `json:"permissions"`
	CreateBy    string     `json:"createBy"`
	CreateOn    time.Time  `json:"createOn"`
	LastUsed    *time.Time `json:"lastUsed"`
	ExpiresAt   *time.Time `json:"expiresAt"`
	IsActive    bool       `json:"isActive"`
}

// defaultUsers seeds a new portal: the owner and one regular user.
func defaultUsers() map[string]*User {
	return map[string]*User{
		OwnerID: {ID: OwnerID, DisplayName: "Portal Owner", Email: "owner@portal.test",
			Status: StatusActive, IsOwner: true},
		RegularUserID: {ID: RegularUserID, DisplayName: "Regular User", Email: "user@portal.test",
			Status: StatusActive},
	}
}

// newKeyLocked stores a fresh active key created by userID. Callers hold p.mu.
func (p *Portal) newKeyLocked(secret, userID string) {
	p.keyCount++
	p.keys[secret] = &APIKey{
		ID: newGUID(), Name: fmt.Sprintf("dev key %d", p.keyCount), Key: secret,
		KeyPostfix: postfix(secret), CreateBy: userID,
		CreateOn: p.nowLocked().Add(-24 * time.Hour).Truncate(time.Second), IsActive: true,
	}
}

func postfix(secret string) string {
	if len(secret) <= 4 {
		return secret
	}
	return secret[len(secret)-4:]
}

// Users returns every user (deleted ones included), sorted by id.
func (p *Portal) Users() []User {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]User, 0, len(p.users))
	for _, u := range p.users {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// User returns the user with id (deleted ones included).
func (p *Portal) User(id string) (User, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[canonicalGUID(id)]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// PutUsers adds or replaces users by id. Ids must be GUIDs and statuses 1,
// 2 or 4; afterwards exactly one user that is not deleted must be the owner.
// On any error nothing changes. A user terminated or deleted here has every
// session ended, as PUT people/status/Terminated does.
func (p *Portal) PutUsers(users ...User) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[string]*User, len(p.users)+len(users))
	for id, u := range p.users {
		next[id] = u
	}
	for i, u := range users {
		id := canonicalGUID(u.ID)
		if id == "" {
			return fmt.Errorf("users[%d].id %q is not a GUID", i, u.ID)
		}
		if u.Status != StatusActive && u.Status != StatusTerminated && u.Status != StatusPending {
			return fmt.Errorf("users[%d].status %d must be 1 (active), 2 (terminated) or 4 (pending)", i, u.Status)
		}
		if u.Type != "" && u.Type != TypeUser && u.Type != TypeGuest && u.Type != TypeRoomAdmin {
			return fmt.Errorf("users[%d].type %q must be empty, user, guest or room_admin", i, u.Type)
		}
		u.ID = id
		if u.IsOwner {
			u.IsAdmin = false
		}
		next[id] = &u
	}
	owners := 0
	for _, u := range next {
		if u.IsOwner && !u.Deleted {
			owners++
		}
	}
	if owners != 1 {
		return fmt.Errorf("the portal must have exactly one owner, this change leaves %d", owners)
	}
	p.users = next
	for _, u := range users {
		if u.Status == StatusTerminated || u.Deleted {
			p.endUserSessionsLocked(canonicalGUID(u.ID), "terminated")
		}
	}
	return nil
}

// Keys returns every API key, sorted by id.
func (p *Portal) Keys() []APIKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]APIKey, 0, len(p.keys))
	for _, k := range p.keys {
		out = append(out, copyKey(k))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Key returns the API key whose secret is secret.
func (p *Portal) Key(secret string) (APIKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[secret]
	if !ok {
		return APIKey{}, false
	}
	return copyKey(k), true
}

// PutKey adds or replaces the key whose secret is k.Key. Empty ID (kept
// from the stored key when replacing), Name and KeyPostfix get defaults, a
// zero CreateOn becomes a day before now, and CreateBy must name an
// existing user. IsActive, ExpiresAt and Permissions are stored as given,
// so set IsActive for a new key.
func (p *Portal) PutKey(k APIKey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if strings.TrimSpace(k.Key) == "" {
		return errors.New("key must not be empty")
	}
	k.CreateBy = canonicalGUID(k.CreateBy)
	if _, ok := p.users[k.CreateBy]; !ok {
		return fmt.Errorf("createBy %q is not a user of the portal", k.CreateBy)
	}
	old := p.keys[k.Key]
	if k.ID == "" {
		if old != nil {
			k.ID = old.ID
		} else {
			k.ID = newGUID()
		}
	}
	if k.Name == "" {
		p.keyCount++
		k.Name = fmt.Sprintf("dev key %d", p.keyCount)
	}
	if k.KeyPostfix == "" {
		k.KeyPostfix = postfix(k.Key)
	}
	if k.CreateOn.IsZero() {
		k.CreateOn = p.nowLocked().Add(-24 * time.Hour)
	}
	k.CreateOn = k.CreateOn.UTC().Truncate(time.Second)
	stored := copyKey(&k)
	p.keys[k.Key] = &stored
	return nil
}

func copyKey(k *APIKey) APIKey {
	c := *k
	c.Permissions = append([]string(nil), k.Permissions...)
	if k.LastUsed != nil {
		t := *k.LastUsed
		c.LastUsed = &t
	}
	if k.ExpiresAt != nil {
		t := *k.ExpiresAt
		c.ExpiresAt = &t
	}
	return c
}

// userDto is EmployeeFullDto, reduced to what callers read.
type userDto struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Email       string `json:"email"`
	Status      int    `json:"status"`
	IsAdmin     bool   `json:"isAdmin"`
	IsOwner     bool   `json:"isOwner"`
	IsVisitor   bool   `json:"isVisitor"`
	IsRoomAdmin bool   `json:"isRoomAdmin"`
	// IsCollaborator is the type "User" (v3+), as the real API names it.
	IsCollaborator bool       `json:"isCollaborator"`
	IsLDAP         bool       `json:"isLDAP"`
	IsSSO          bool       `json:"isSSO"`
	Groups         []groupDto `json:"groups"`
}

type groupDto struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func toUserDto(u *User) userDto {
	d := userDto{ID: u.ID, DisplayName: u.DisplayName, Email: u.Email, Status: u.Status,
		IsAdmin: u.IsAdmin, IsOwner: u.IsOwner, IsLDAP: u.IsLDAP, IsSSO: u.IsSSO, Groups: []groupDto{}}
	// The real API derives the flags from one type (EmployeeFullDtoHelper):
	// an owner or admin is none of the others.
	if !u.IsOwner && !u.IsAdmin {
		switch u.Type {
		case TypeGuest:
			d.IsVisitor = true
		case TypeRoomAdmin:
			d.IsRoomAdmin = true
		default:
			d.IsCollaborator = true
		}
	}
	return d
}

// keyDto is ApiKeyResponseDto: the key masked, null fields omitted.
type keyDto struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Key         string     `json:"key"`
	KeyPostfix  string     `json:"keyPostfix"`
	Permissions []string   `json:"permissions"`
	LastUsed    string     `json:"lastUsed,omitempty"`
	CreateOn    string     `json:"createOn"`
	CreateBy    creatorDto `json:"createBy"`
	ExpiresAt   string     `json:"expiresAt,omitempty"`
	IsActive    bool       `json:"isActive"`
}

type creatorDto struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// getKeySelf serves GET keys/@self: the key that authenticated the request.
func (p *Portal) getKeySelf(w http.ResponseWriter, r *http.Request, c caller) {
	p.mu.Lock()
	var k *APIKey
	for _, cand := range p.keys {
		if cand.ID == c.keyID {
			k = cand
		}
	}
	if k == nil { // replaced while the request ran
		p.mu.Unlock()
		writeUnauthorized(w)
		return
	}
	dto := keyDto{ID: k.ID, Name: k.Name, Key: "sk-***" + k.KeyPostfix, KeyPostfix: k.KeyPostfix,
		Permissions: append([]string{}, k.Permissions...), CreateOn: formatAPIDateTime(k.CreateOn, p.tz),
		IsActive: k.IsActive}
	if k.LastUsed != nil {
		dto.LastUsed = formatAPIDateTime(*k.LastUsed, p.tz)
	}
	if k.ExpiresAt != nil {
		dto.ExpiresAt = formatAPIDateTime(*k.ExpiresAt, p.tz)
	}
	if u, ok := p.users[k.CreateBy]; ok {
		dto.CreateBy = creatorDto{ID: u.ID, DisplayName: u.DisplayName}
	}
	p.mu.Unlock()
	writeSuccess(w, r, dto, 1)
}

// getPeopleSelf serves GET people/@self: the user the key acts as.
func (p *Portal) getPeopleSelf(w http.ResponseWriter, r *http.Request, c caller) {
	p.writeUser(w, r, c.userID)
}

// getPerson serves GET people/{userId}: 404 for an unknown or deleted user
// (and for an id that is not a GUID, which matches no user).
func (p *Portal) getPerson(w http.ResponseWriter, r *http.Request, c caller) {
	p.writeUser(w, r, canonicalGUID(lastSegment(r)))
}

func (p *Portal) writeUser(w http.ResponseWriter, r *http.Request, id string) {
	p.mu.Lock()
	u, ok := p.users[id]
	var dto userDto
	if ok && !u.Deleted {
		dto = toUserDto(u)
	}
	p.mu.Unlock()
	if !ok || u.Deleted {
		writeError(w, http.StatusNotFound, "The user could not be found", "ASC.Core.Common.ItemNotFoundException",
			"   at ASC.People.Api.UserController.GetById(String userid)", hresultException)
		return
	}
	writeSuccess(w, r, dto, 1)
}

// putPeopleStatus serves PUT people/status/{Active|Terminated} with body
// {"userIds":[...]}: only admins may call (403 otherwise). The whole request
// is refused with 403, changing nothing, when a target is the caller, the
// owner, an LDAP user, or — unless the caller is the owner — a DocSpace
// admin. Unknown and deleted ids are skipped. Terminating ends every session
// of the user, and its keys stop working; the answer lists the changed
// users with their new status. It writes audit event 4020.
func (p *Portal) putPeopleStatus(w http.ResponseWriter, r *http.Request, c caller) {
	const frame = "ASC.People.Api.UserController.UpdateUserStatusAsync(EmployeeStatus status, UpdateMembersRequestDto inDto)"
	var status int
	switch strings.ToLower(lastSegment(r)) {
	case "active", "1":
		status = StatusActive
	case "terminated", "2":
		status = StatusTerminated
	default:
		writeValidation(w, r, map[string][]string{"status": {"The value '" + lastSegment(r) + "' is not valid."}})
		return
	}
	var in struct {
		UserIDs []string `json:"userIds"`
	}
	if !decodeAPIBody(w, r, &in) {
		return
	}
	if c.role != roleAdmin {
		writeAccessDenied(w, frame)
		return
	}
	p.mu.Lock()
	me := p.users[c.userID]
	var targets []*User
	for _, id := range in.UserIDs {
		u, ok := p.users[canonicalGUID(id)]
		if !ok || u.Deleted {
			continue
		}
		if u.ID == c.userID || u.IsOwner || u.IsLDAP || (u.IsAdmin && !me.IsOwner) {
			p.mu.Unlock()
			writeAccessDenied(w, frame)
			return
		}
		targets = append(targets, u)
	}
	out := make([]userDto, 0, len(targets))
	ids := make([]string, 0, len(targets))
	for _, u := range targets {
		u.Status = status
		if status == StatusTerminated {
			p.endUserSessionsLocked(u.ID, "terminated")
		}
		out = append(out, toUserDto(u))
		ids = append(ids, u.ID)
	}
	if len(targets) > 0 {
		p.addAuditEventsLocked(AuditEvent{ActionID: 4020, UserID: c.userID, IP: c.addr, Target: ids})
	}
	p.mu.Unlock()
	writeSuccess(w, r, out, len(out))
}

// decodeAPIBody binds a small JSON request body, answering the 400
// validation envelope when it is not JSON of the expected shape.
func decodeAPIBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, 1<<20)
	if err := decodeJSON(body, v); err != nil {
		writeValidation(w, r, map[string][]string{"$": {"The JSON value could not be converted. " + err.Error()}, "inDto": {"The inDto field is required."}})
		return false
	}
	return true
}

// newGUID returns a random version-4 GUID in lower-case D form.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
