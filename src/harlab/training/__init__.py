"""How a network is trained: seeding, the loop, history."""
