"""policybot's platform-neutral core: policy in, cited answers out, every question logged."""
