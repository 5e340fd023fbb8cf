"""Access: API keys and the web form's sessions."""
