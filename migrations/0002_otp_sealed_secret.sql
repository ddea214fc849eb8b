-- A code's pyotp secret, sealed (AES-GCM under a key derived from OTP_HMAC_KEY) from the moment
-- the challenge is written until the provider has accepted the message. A retried send re-sends
-- the same code instead of a second one; once sent the secret is erased and only the digest stays.
ALTER TABLE otp_challenges ADD COLUMN secret_sealed bytea;
