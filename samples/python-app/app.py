"""A small Python Lambda handler that uses a package shipped beside it."""
import json

from mypkg.greeting import greet


def handler(event, context):
    name = (event or {}).get("name", "world")
    return {"statusCode": 200, "body": json.dumps({"message": greet(name)})}
