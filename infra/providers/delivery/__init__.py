"""OTP delivery providers behind one interface: console (dev outbox), SendGrid, Twilio."""
