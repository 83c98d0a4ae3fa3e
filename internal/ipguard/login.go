package ipguard

// MessageAction codes of the portal's login history (docspace-api.md §3.5).
// Codes not listed (logout 1006, session events 1016/1017, anything else) are
// not logins and are ignored.
var (
	successActions = map[int]bool{
		1000: true, // LoginSuccess
		1001: true, // LoginSuccessViaSocialAccount
		1007: true, // LoginSuccessViaSms
		1010: true, // LoginSuccessViaApi
		1011: true, // LoginSuccessViaSocialApp
		1012: true, // LoginSuccessViaApiSms
		1015: true, // LoginSuccessViaSSO
		1019: true, // LoginSuccessViaApiSocialAccount
		1021: true, // LoginSuccesViaTfaApp
		1024: true, // LoginSuccessViaApiTfa
		1027: true, // AuthLinkActivated (confirm-link login)
		1028: true, // LoginSuccessViaOAuth
		1029: true, // LoginSuccessViaPassword
	}
	failureActions = map[int]bool{
		1002: true, // LoginFailInvalidCombination
		1003: true, // LoginFailSocialAccountNotFound
		1004: true, // LoginFailDisabledProfile
		1005: true, // LoginFail
		1008: true, // LoginFailViaSms
		1009: true, // LoginFailIpSecurity
		1013: true, // LoginFailViaApi
		1014: true, // LoginFailViaApiSms
		1018: true, // LoginFailViaSSO
		1020: true, // LoginFailViaApiSocialAccount
		1022: true, // LoginFailViaTfaApp
		1023: true, // LoginFailBruteForce
		1025: true, // LoginFailViaApiTfa
		1026: true, // LoginFailRecaptcha
	}
)

// IsSuccessfulLogin reports whether e is a successful login: its action is
// one of the portal's successful-login codes.
func (e LoginEvent) IsSuccessfulLogin() bool { return successActions[e.ActionID] }

// IsFailedLogin reports whether e is a failed login: its action is one of the
// portal's failed-login codes.
func (e LoginEvent) IsFailedLogin() bool { return failureActions[e.ActionID] }
