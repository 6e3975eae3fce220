// POST /admin : an ES module handler; echoes the command it was given.
export const handler = async (event) => {
  const body = event && event.body ? JSON.parse(event.body) : {};
  return { statusCode: 202, body: JSON.stringify({ accepted: body.command || 'noop' }) };
};
