def handler(event, context):
    return {"statusCode": 200, "body": "thumbnails are built as a container image"}
