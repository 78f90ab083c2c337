"""GET /: the dashboard page, its assets and its server-drawn charts."""
