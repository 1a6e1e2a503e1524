/** The Cloudflare OAuth-clients API client: the one import the rest of the program needs. */
export {
  CloudflareApi,
  createClient,
  createReader,
  ROUTES,
  type ApiHandle,
  type CallOptions,
  type CreateOptions,
  type CreateResult,
  type OAuthClientsReader,
  type OAuthClientsWriter,
  type ReaderHandle,
} from "./client.js";
export {
  API_ERROR_CODES,
  CloudflareApiError,
  isApiError,
  type ApiErrorCode,
  type CfError,
} from "./errors.js";
export {
  clientOptionsFromEnv,
  DEFAULT_BASE_URL,
  plainHttpBaseUrlWarning,
  type BackoffOptions,
  type ApiResponseInfo,
  type ClientOptions,
  type Credentials,
} from "./options.js";
export type { RateBudgetOptions, RateBudgetSnapshot, RateBudgetView } from "./rate-budget.js";
