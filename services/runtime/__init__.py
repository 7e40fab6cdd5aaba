"""Settings, embedded servers, logging."""
