"""GET /: the dashboard page and its assets (its charts are drawn in the browser)."""
