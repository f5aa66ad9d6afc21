"""Resource monitoring and the circuit breaker that protects the live scanner."""
