"""Media intake: sniffing by content, loading under explicit limits, probing, and frame sampling."""
