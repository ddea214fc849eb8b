"""The payment processor client: the sandbox today, a real adapter later, behind one interface."""
