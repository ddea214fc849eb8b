"""Local stand-ins that speak SendGrid's and Twilio's protocols, for tests and the campaign."""
