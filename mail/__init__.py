"""The email domain: pure Python over bytes, no Flask."""
