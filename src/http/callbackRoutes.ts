// Callbacks from batch pods, with bakito's paths and answers: `POST /report/{node}/{executionID}/
// result|file|event`. Answers are plain text as bakito's are: 400 for a body that is not what the
// path takes, 401 without the pod's token (leasehold's addition), 406 for a node and execution
// that do not belong together, 413 for an upload over the size limit.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ValidationError } from '../errors.ts';
import type { BatchExecutionStore } from '../store/postgres/batchExecutions.ts';
import type { BatchConfig } from '../triggers/batch/batchConfig.ts';
import { type BatchEvent, parseBatchEvent } from '../triggers/batch/batchEvent.ts';
import type { BatchMetrics } from '../triggers/batch/batchMetrics.ts';
import { parseBatchResults } from '../triggers/batch/batchResults.ts';
import type { CallbackTokens } from '../triggers/batch/callbackToken.ts';
import type { ReportDirectory } from '../triggers/batch/reportDirectory.ts';

export interface CallbackRoutesOptions {
  config: BatchConfig;
  executions: BatchExecutionStore;
  tokens: CallbackTokens;
  reports: ReportDirectory;
  metrics: BatchMetrics;
  /** Records a Kubernetes Event on the node's pod. */
  recordEvent(executionId: string, node: string, event: BatchEvent): Promise<void>;
  log: Logger;
}

interface CallbackParams {
  node: string;
  executionID: string;
}

type CallbackRequest = FastifyRequest<{
  Params: CallbackParams;
  Querystring: { name?: string };
  Body: Buffer;
}>;

const BEARER = /^Bearer\s+(\S+)$/i;

export async function callbackRoutes(app: FastifyInstance, options: CallbackRoutesOptions): Promise<void> {
  const { config, executions, tokens, reports, metrics, log } = options;

  // Bodies arrive as bytes whatever their type: results and events are parsed here, so a bad body
  // gets bakito's 400 with the parser's words, and files are stored as sent.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: config.maxFileBytes },
    (_request, body, done) => done(null, body),
  );

  // onRequest, before the body is read: a caller without the pod's token gets its 401 without the
  // daemon first buffering up to maxFileSize of its upload.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const { node, executionID } = request.params as CallbackParams;
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined || !tokens.verify(executionID, node, token)) {
      return reply
        .code(401)
        .type('text/plain')
        .send('callback token missing or not valid for this node and execution');
    }
    const execution = await executions.get(config.name, executionID);
    if (execution === null || !execution.nodes.some((n) => n.node === node)) {
      return reply.code(406).type('text/plain').send('node / execution ID not allowed');
    }
  });

  const badRequest = (reply: FastifyReply, err: unknown) => {
    if (err instanceof ValidationError) return reply.code(400).type('text/plain').send(err.message);
    throw err;
  };

  app.post('/report/:node/:executionID/result', async (request: CallbackRequest, reply) => {
    const { node, executionID } = request.params;
    const body = (request.body ?? Buffer.alloc(0)).toString('utf8');
    let results: ReturnType<typeof parseBatchResults>;
    try {
      results = parseBatchResults(body, config);
    } catch (err) {
      return badRequest(reply, err);
    }
    let path: string;
    try {
      path = await reports.saveResult(executionID, node, body);
    } catch (err) {
      return badRequest(reply, err);
    }
    metrics.resultsReceived(executionID, node, results);
    log.info({ node, execution: executionID, path }, 'batch result received');
    return reply.code(200).type('text/plain').send('');
  });

  app.post('/report/:node/:executionID/file', async (request: CallbackRequest, reply) => {
    const { node, executionID } = request.params;
    const contentType = request.headers['content-type'] ?? '';
    if (contentType.startsWith('multipart/')) {
      return reply
        .code(415)
        .type('text/plain')
        .send(
          'send the file as the request body, named by ?name= or Content-Disposition, not as a multipart form',
        );
    }
    try {
      const name =
        request.query.name ??
        dispositionFileName(request.headers['content-disposition']) ??
        generatedName(contentType);
      // `<node>-<name>` shares the directory with the results `<other>.json`: node `worker` uploading
      // `1.json` would replace node `worker-1`'s results. Refused, so a pod writes only its own files.
      const stored = `${node}-${name}`;
      const execution = stored.endsWith('.json') ? await executions.get(config.name, executionID) : null;
      const shadowed = execution?.nodes.find((n) => `${n.node}.json` === stored);
      if (shadowed !== undefined) {
        throw new ValidationError(
          'name',
          `file name "${name}" is not allowed: "${stored}" is where node ${shadowed.node} keeps its results`,
        );
      }
      const path = await reports.saveFile(executionID, node, name, request.body ?? Buffer.alloc(0));
      log.info(
        { node, execution: executionID, path, bytes: request.body?.length ?? 0 },
        'batch file received',
      );
    } catch (err) {
      return badRequest(reply, err);
    }
    return reply.code(200).type('text/plain').send('');
  });

  app.post('/report/:node/:executionID/event', async (request: CallbackRequest, reply) => {
    const { node, executionID } = request.params;
    let event: BatchEvent;
    try {
      event = parseBatchEvent((request.body ?? Buffer.alloc(0)).toString('utf8'));
    } catch (err) {
      return badRequest(reply, err);
    }
    await options.recordEvent(executionID, node, event);
    log.info(
      { node, execution: executionID, reason: event.reason, type: event.type },
      'batch event recorded',
    );
    return reply.code(200).type('text/plain').send('');
  });
}

/** `attachment; filename="report.txt"` → `report.txt`; the name is checked by the report directory. */
function dispositionFileName(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch (err) {
    // `%zz` and the like: the pod's mistake (400), not the daemon's (500).
    throw new ValidationError(
      'name',
      `file name "${match[1]}" in Content-Disposition is not valid percent-encoding`,
      {
        cause: err,
      },
    );
  }
}

/** bakito names an unnamed upload by a UUID and an extension from its content type. */
function generatedName(contentType: string): string {
  const type = contentType.split(';')[0]?.trim() ?? '';
  const extension = type === 'text/plain' ? '.txt' : type === 'application/json' ? '.json' : '.file';
  return `${randomUUID()}${extension}`;
}
