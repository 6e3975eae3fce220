'use strict';
// A small Node.js Lambda handler using dependencies laid out the way npm and pnpm do.
const leftPad = require('left-pad');
const isOdd = require('is-odd');

exports.handler = async (event) => {
  const n = (event && event.n) || 7;
  return { statusCode: 200, body: JSON.stringify({ padded: leftPad(String(n), 5, '0'), odd: isOdd(n) }) };
};
