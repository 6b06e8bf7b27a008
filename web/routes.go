package web

import "github.com/gin-gonic/gin"

// engine builds the router and returns it as the gin engine, so tests can
// walk the route table (Routes()) against the OpenAPI document.
func (s *Server) engine() *gin.Engine { return s.Handler().(*gin.Engine) }
