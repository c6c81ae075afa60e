"""The renderer: pure functions from a template and a caption to GIF, MP4 and poster bytes.

It knows nothing of HTTP, storage or AWS; the site's render service and the Lambda handler wrap it.
"""
