package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/partners"
)

// The console's staff page (admin only): the operator's staff accounts,
// their roles and status, and a form to create one. Each action calls the
// service method of its admin API route (POST /v1/admin/staff, POST
// .../staff/{id}/status, PUT .../staff/{id}/role).

var consoleRoles = []access.Role{access.RoleAdmin, access.RoleFinance, access.RoleSupport}

// consoleStaff is GET /console/staff.
func (s *Server) consoleStaff(c *gin.Context) {
	s.staffPage(c, http.StatusOK, "", nil, nil)
}

func (s *Server) staffPage(c *gin.Context, status int, form string, posted url.Values, err error) {
	list, lerr := s.deps.Access.StaffMembers(c.Request.Context(), partners.Page{Limit: 200})
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	f := newFormState()
	f.set("staff", "role", string(access.RoleSupport))
	if form != "" {
		f.refused(form, posted, err, nil)
		delete(f.V, "staff.password") // never sent back to the browser
	}
	page := consolePage("staff", "Staff", formData(f, gin.H{"Staff": list, "Roles": consoleRoles, "Me": staff(c).StaffID}))
	if err != nil {
		page.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_staff", page)
}

// consoleCreateStaff is POST /console/staff.
func (s *Server) consoleCreateStaff(c *gin.Context) {
	email := strings.TrimSpace(c.PostForm("email"))
	st, err := s.deps.Access.CreateStaff(c.Request.Context(), email, c.PostForm("password"), access.Role(c.PostForm("role")))
	s.audit(c, "staff.create", "staff:"+strconv.FormatInt(st.ID, 10), email+" as "+c.PostForm("role"), err)
	if err != nil {
		s.staffPage(c, refusedStatus(err), "staff", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/staff", "Staff account "+st.Email+" created as "+string(st.Role)+".")
}

// consoleStaffStatus is POST /console/staff/:id/status (disable, enable).
func (s *Server) consoleStaffStatus(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	st, err := s.deps.Access.SetStaffStatus(c.Request.Context(), id, c.PostForm("status"))
	s.audit(c, "staff.status", "staff:"+c.Param("id"), c.PostForm("status"), err)
	if err != nil {
		s.failBack(c, "/console/staff", err)
		return
	}
	okBack(c, "/console/staff", st.Email+" is now "+st.Status+".")
}

// consoleStaffRole is POST /console/staff/:id/role.
func (s *Server) consoleStaffRole(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	st, err := s.deps.Access.SetStaffRole(c.Request.Context(), id, access.Role(c.PostForm("role")))
	s.audit(c, "staff.role", "staff:"+c.Param("id"), c.PostForm("role"), err)
	if err != nil {
		s.failBack(c, "/console/staff", err)
		return
	}
	okBack(c, "/console/staff", st.Email+" is now "+string(st.Role)+".")
}
