"""payment-service's HTTP routes."""
