'use strict';
// Run with `node test/hello.test.js`; left out of the artifact by the patterns.
const assert = require('assert');
const { handler } = require('../src/hello');
handler({ queryStringParameters: { name: 'Ada' } }).then((r) => {
  assert.strictEqual(r.statusCode, 200);
  assert.match(JSON.parse(r.body).message, /Ada/);
  console.log('ok');
});
