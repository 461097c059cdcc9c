// What a batch pod may post: results checked against the configured gauges, events in both of
// bakito's shapes. Every refusal is a ValidationError (the callback answers 400 with its message).

import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.ts';
import { parseBatchEvent } from '../../../src/triggers/batch/batchEvent.ts';
import { parseBatchResults } from '../../../src/triggers/batch/batchResults.ts';

const config = {
  metrics: {
    prefix: 'foo',
    gauges: {
      test: { help: 'h', labels: ['label_a', 'label_b'] },
      bare: { help: 'h', labels: [] },
    },
  },
};

function refused(run: () => unknown): ValidationError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('batch results', () => {
  it('reads bakito’s example body', () => {
    const body = JSON.stringify({
      test: [
        { value: 1.0, labels: { label_a: 'AAA', label_b: 'BBB' } },
        { value: 2.554, labels: { label_a: 'AAA2', label_b: 'BBB2' } },
      ],
    });
    expect(parseBatchResults(body, config)).toEqual({
      test: [
        { value: 1, labels: { label_a: 'AAA', label_b: 'BBB' } },
        { value: 2.554, labels: { label_a: 'AAA2', label_b: 'BBB2' } },
      ],
    });
  });

  it('takes labels as optional', () => {
    expect(parseBatchResults('{"bare":[{"value":-3}]}', config)).toEqual({
      bare: [{ value: -3, labels: {} }],
    });
  });

  it.each([
    ['bad JSON', '{"test": [', 'body', /not valid JSON/],
    ['a list', '[]', 'body', /JSON object of metric suffixes/],
    ['null', 'null', 'body', /JSON object/],
    ['empty results', '{}', 'body', /must not be empty/],
    [
      'an unknown suffix',
      '{"nope":[{"value":1}]}',
      'nope',
      /"nope" is not a configured metric \(known: test, bare\)/,
    ],
    [
      'an inherited name as suffix',
      '{"constructor":[{"value":1,"labels":{"x":"y"}}]}',
      'constructor',
      /not a configured metric/,
    ],
    ['__proto__ as suffix', '{"__proto__":[{"value":1}]}', '__proto__', /not a configured metric/],
    ['toString as suffix', '{"toString":[{"value":1}]}', 'toString', /not a configured metric/],
    ['a suffix that is not a list', '{"test":{"value":1}}', 'test', /must be a list/],
    ['an item that is not an object', '{"test":[1]}', 'test[0]', /must be an object/],
    [
      'an unknown label',
      '{"test":[{"value":1,"labels":{"label_c":"x"}}]}',
      'test[0].labels.label_c',
      /label "label_c" is not configured for "test" \(allowed: label_a, label_b\)/,
    ],
    [
      'a label that is not a string',
      '{"test":[{"value":1,"labels":{"label_a":1}}]}',
      'test[0].labels.label_a',
      /must be a string/,
    ],
    ['labels as a list', '{"test":[{"value":1,"labels":["a"]}]}', 'test[0].labels', /object of strings/],
    ['a value as text', '{"test":[{"value":"1.0"}]}', 'test[0].value', /finite number/],
    ['a missing value', '{"test":[{"labels":{}}]}', 'test[0].value', /finite number/],
    ['a null value', '{"bare":[{"value":1},{"value":null}]}', 'bare[1].value', /finite number/],
  ])('refuses %s', (_what, body, field, message) => {
    const err = refused(() => parseBatchResults(body, config));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });
});

describe('batch events', () => {
  it('reads bakito’s simple message', () => {
    expect(parseBatchEvent('{"warning": false, "reason": "TestReason", "message": "test message"}')).toEqual({
      type: 'Normal',
      reason: 'TestReason',
      message: 'test message',
    });
  });

  it('fills in the args of a message with parameters', () => {
    expect(
      parseBatchEvent(
        '{"warning": true, "reason": "TestReason", "message": "test message: %s", "args": ["a1"]}',
      ),
    ).toEqual({ type: 'Warning', reason: 'TestReason', message: 'test message: a1' });
  });

  it('reads the later eventType / messageFmt shape', () => {
    expect(
      parseBatchEvent(
        '{"eventType": "Warning", "reason": "Disk", "messageFmt": "%s of %s", "args": ["1", "2"]}',
      ),
    ).toEqual({ type: 'Warning', reason: 'Disk', message: '1 of 2' });
  });

  it('marks missing args instead of failing, and cuts long messages', () => {
    expect(parseBatchEvent('{"reason":"R","message":"%s and %s","args":["x"]}').message).toBe(
      'x and %!s(MISSING)',
    );
    expect(parseBatchEvent(JSON.stringify({ reason: 'R', message: 'm'.repeat(5000) })).message).toHaveLength(
      1024,
    );
  });

  it.each([
    ['bad JSON', '{"reason":', 'body'],
    ['a list', '[1]', 'body'],
    ['a lower-case reason', '{"reason":"testReason","message":"m"}', 'reason'],
    ['a reason with spaces', '{"reason":"Test Reason","message":"m"}', 'reason'],
    ['a missing reason', '{"message":"m"}', 'reason'],
    ['a missing message', '{"reason":"R"}', 'message'],
    ['warning as text', '{"reason":"R","message":"m","warning":"yes"}', 'warning'],
    ['an unknown eventType', '{"reason":"R","message":"m","eventType":"Error"}', 'eventType'],
    ['args that are not strings', '{"reason":"R","message":"%s","args":[1]}', 'args'],
  ])('refuses %s', (_what, body, field) => {
    expect(refused(() => parseBatchEvent(body)).field).toBe(field);
  });
});
