"""What the commands do, as library calls: train, evaluate, compare, fine-tune and predict."""
