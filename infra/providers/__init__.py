"""Outside services behind small interfaces: code senders (email, SMS) and the payment processor."""
