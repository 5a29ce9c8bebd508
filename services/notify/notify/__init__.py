"""Notify: turns events into messages to citizens, officers, leaders and outside systems."""
