"""The trust-and-safety workflow: human reviews, appeals, the review queue and their webhook events."""
