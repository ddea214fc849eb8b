"""Callbacks from providers: the processor's events (SPEC §9) and Twilio's delivery reports."""
