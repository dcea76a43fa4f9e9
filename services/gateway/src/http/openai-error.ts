/**
 * OpenAI-style errors: `{ "error": { "message", "type", "param", "code" } }` with the HTTP status that
 * goes with each. Every HTTP error the gateway sends is built here.
 */
export type OpenAiErrorType =
  'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable';

export interface OpenAiErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: OpenAiErrorType;
    readonly param: string | null;
    readonly code: string | null;
  };
}

export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly type: OpenAiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Sent as `Retry-After` (seconds) with the response, for an error a retry can cure. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    status: number,
    type: OpenAiErrorType,
    message: string,
    param: string | null = null,
    code: string | null = null,
    retryAfterSeconds?: number,
  ) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  get body(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null): HttpError =>
  new HttpError(400, 'invalid_request_error', message, param, code);
export const notFound = (message: string, param: string | null = null, code: string | null = null): HttpError =>
  new HttpError(404, 'not_found_error', message, param, code);
export const unprocessable = (message: string, param: string | null = null, code: string | null = null): HttpError =>
  new HttpError(422, 'invalid_request_error', message, param, code);
export const tooManyRequests = (message: string): HttpError =>
  new HttpError(429, 'rate_limit_error', message, null, 'queue_full');
export const unavailable = (message: string): HttpError =>
  new HttpError(503, 'service_unavailable', message, null, 'not_ready');
