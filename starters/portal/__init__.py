"""The portal: one FastAPI app for customers (pay links), staff, the codec endpoint and provider webhooks."""
