"""One job in one folder: specs, lock, assembly, host settings; imports config and below."""
