"""Ray: start-up, the Serve deployments wrapping the stage classes, and the Serve application."""
