"""Turnout's web console: a backend-for-frontend over the services' public HTTP APIs."""
