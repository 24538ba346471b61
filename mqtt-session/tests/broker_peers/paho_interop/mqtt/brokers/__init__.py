# Empty here: the suite imports this package, but its reference broker is not needed
# to test ours, so it is not vendored.
