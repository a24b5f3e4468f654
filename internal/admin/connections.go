package admin

import (
	"net/http"
	"time"
)

// Conn is one source as the admin API shows it (PRODUCT.md's CONN). It
// never holds a credential.
type Conn struct {
	Name     string    `json:"name"`
	Origin   string    `json:"origin"` // config | dir | postgres
	Provider string    `json:"provider"`
	Mode     string    `json:"mode"`
	Bucket   string    `json:"bucket"`
	Prefix   string    `json:"prefix"`
	State    string    `json:"state"` // ok | invalid | credentials_failing | conflict
	Problems []Problem `json:"problems"`
	LoadedAt time.Time `json:"loaded_at"`
}

// Problem is one problem of a connection.
type Problem struct {
	Error   string `json:"error"` // a stable code
	Message string `json:"message"`
}

// Conn states.
const (
	StateOK                 = "ok"
	StateInvalid            = "invalid"
	StateCredentialsFailing = "credentials_failing"
	StateConflict           = "conflict"
)

// Connections is what the connection routes read: every source from every
// origin, in a stable order (the root's).
type Connections interface {
	List() []Conn
	Get(name string) (Conn, bool)
}

// ListConnections answers GET /admin/v1/connections:
// {"connections": [CONN…]}.
func ListConnections(c Connections) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		list := c.List()
		for i := range list {
			list[i] = normalize(list[i])
		}
		if list == nil {
			list = []Conn{}
		}
		return WriteJSON(w, struct {
			Connections []Conn `json:"connections"`
		}{list})
	}
}

// GetConnection answers GET /admin/v1/connections/{name}: one CONN, or
// 404 unknown_source.
func GetConnection(c Connections) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		conn, ok := c.Get(r.PathValue("name"))
		if !ok {
			return ErrUnknownSource
		}
		return WriteJSON(w, normalize(conn))
	}
}

// RegisterConnections adds both connection routes to s.
func RegisterConnections(s *Server, c Connections) {
	s.Handle(http.MethodGet, "/admin/v1/connections", ListConnections(c))
	s.Handle(http.MethodGet, "/admin/v1/connections/{name}", GetConnection(c))
}

// normalize makes problems [] rather than null.
func normalize(c Conn) Conn {
	if c.Problems == nil {
		c.Problems = []Problem{}
	}
	return c
}
