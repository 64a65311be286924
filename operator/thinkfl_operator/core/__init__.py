"""The bottom layer every other one may use: data models, the error tree, RFC 3339 times and the
diagnosis deadline. Nothing here imports another package of the project."""
