"""The web plumbing every domain uses, none of which imports a domain: content
negotiation, CSV and JSON answers, keyset pagination, money, the shared query parameters,
OpenAPI declarations, the lifespan's dependencies and the ReDoc page."""
