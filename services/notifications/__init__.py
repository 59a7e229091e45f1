"""Agents hear about their work: the events and each person's choices (events.py),
@mentions in notes (mentions.py), the notification emails (email.py) and answering one
by email (reply_address.py, reply_by_email.py)."""
