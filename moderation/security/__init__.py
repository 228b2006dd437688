"""Security pieces shared by views and services: media encryption, rate limits, response headers."""
