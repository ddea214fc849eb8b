"""`make chaos`: the fault campaign."""
