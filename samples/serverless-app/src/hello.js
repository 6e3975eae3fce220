'use strict';
// GET /hello?name=... : greets in the caller's language, using the greetings layer.
let greetings;
try {
  greetings = require('/opt/nodejs/node_modules/greetings');
} catch (e) {
  greetings = { greet: (name) => `Hello, ${name}!` };
}

exports.handler = async (event) => {
  const q = (event && event.queryStringParameters) || {};
  return { statusCode: 200, body: JSON.stringify({ message: greetings.greet(q.name || 'world', q.lang) }) };
};
