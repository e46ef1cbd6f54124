"""Signed webhooks: callback URL checks, signing, the pinned sender and the delivery loop."""
