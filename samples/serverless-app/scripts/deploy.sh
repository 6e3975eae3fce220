#!/bin/sh
# Deploy with the framework after packing; left out of the artifact by the patterns.
exec npx serverless deploy --stage "${1:-dev}"
