// Typed calls of the model registry (registered models, versions, aliases, stages) and of prompts, which
// MLflow keeps as registered models tagged `mlflow.prompt.is_prompt`.
import { ApiError, del, get, patch, post, type Tag } from "./api";

export const IS_PROMPT_TAG = "mlflow.prompt.is_prompt";
export const PROMPT_TEXT_TAG = "mlflow.prompt.text";
export const PROMPT_TYPE_TAG = "_mlflow_prompt_type";
export const STAGES = ["None", "Staging", "Production", "Archived"] as const;
/** The `source` MLflow's Python client gives a prompt version (the field is required and unused). */
export const PROMPT_SOURCE = "dummy-source";
/** MLflow's rule for prompt names (`mlflow.prompt.constants.PROMPT_NAME_RULE`). */
export const PROMPT_NAME_RULE = /^[a-zA-Z0-9_.-]+$/;

export interface Alias {
  alias: string;
  version: string;
}
export interface RegisteredModel {
  name: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  description?: string;
  latest_versions?: ModelVersion[];
  tags?: Tag[];
  aliases?: Alias[];
}
export interface ModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  run_link?: string;
  status?: string;
  status_message?: string;
  tags?: Tag[];
  aliases?: string[];
  user_id?: string;
}

export const isPrompt = (model: { tags?: Tag[] }) =>
  (model.tags ?? []).some((tag) => tag.key === IS_PROMPT_TAG && tag.value.toLowerCase() === "true");

/** Quotes a value for the registry filter grammar (single quotes, a quote doubled). */
export const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * Every registered model (or, with `prompts`, every prompt) whose name contains `query`, case-insensitive,
 * all pages. MLflow's search leaves prompts out unless the filter asks for the prompt tag.
 */
export async function searchRegisteredModels(query: string, prompts = false): Promise<RegisteredModel[]> {
  const parts = query ? [`name ILIKE ${quote(`%${query}%`)}`] : [];
  if (prompts) parts.push(`tags.\`${IS_PROMPT_TAG}\` = 'true'`);
  const filter = parts.join(" AND ") || undefined;
  const all: RegisteredModel[] = [];
  let page_token: string | undefined;
  do {
    const page = await get<{ registered_models?: RegisteredModel[]; next_page_token?: string }>("/registered-models/search", {
      filter,
      max_results: 1000,
      order_by: ["name ASC"],
      page_token,
    });
    all.push(...(page.registered_models ?? []));
    page_token = page.next_page_token;
  } while (page_token && all.length < 20000);
  return all;
}

export const getRegisteredModel = (name: string) =>
  get<{ registered_model: RegisteredModel }>("/registered-models/get", { name }).then((answer) => answer.registered_model);

/** Every version of a model (or prompt: MLflow's search leaves prompt versions out unless asked), newest first. */
export async function searchModelVersions(name: string, prompts = false): Promise<ModelVersion[]> {
  const all: ModelVersion[] = [];
  let page_token: string | undefined;
  do {
    const page = await get<{ model_versions?: ModelVersion[]; next_page_token?: string }>("/model-versions/search", {
      filter: `name = ${quote(name)}${prompts ? ` AND tags.\`${IS_PROMPT_TAG}\` = 'true'` : ""}`,
      max_results: 10000,
      order_by: ["version_number DESC"],
      page_token,
    });
    all.push(...(page.model_versions ?? []));
    page_token = page.next_page_token;
  } while (page_token && all.length < 100000);
  return all;
}

export const getModelVersion = (name: string, version: string) =>
  get<{ model_version: ModelVersion }>("/model-versions/get", { name, version }).then((answer) => answer.model_version);

export const createRegisteredModel = (name: string, description: string, tags: Tag[]) =>
  post<{ registered_model: RegisteredModel }>("/registered-models/create", { name, description: description || undefined, tags }).then(
    (answer) => answer.registered_model,
  );
export const deleteRegisteredModel = (name: string) => del("/registered-models/delete", { name });
export const createModelVersion = (version: { name: string; source: string; run_id?: string; description?: string; tags?: Tag[] }) =>
  post<{ model_version: ModelVersion }>("/model-versions/create", version).then((answer) => answer.model_version);

export const updateRegisteredModel = (name: string, description: string) => patch("/registered-models/update", { name, description });
export const setRegisteredModelTag = (name: string, key: string, value: string) => post("/registered-models/set-tag", { name, key, value });
export const deleteRegisteredModelTag = (name: string, key: string) => del("/registered-models/delete-tag", { name, key });
export const setAlias = (name: string, alias: string, version: string) => post("/registered-models/alias", { name, alias, version });
export const deleteAlias = (name: string, alias: string) => del("/registered-models/alias", { name, alias });

export const updateModelVersion = (name: string, version: string, description: string) =>
  patch("/model-versions/update", { name, version, description });
export const setModelVersionTag = (name: string, version: string, key: string, value: string) =>
  post("/model-versions/set-tag", { name, version, key, value });
export const deleteModelVersionTag = (name: string, version: string, key: string) =>
  del("/model-versions/delete-tag", { name, version, key });
export const transitionStage = (name: string, version: string, stage: string, archive_existing_versions: boolean) =>
  post("/model-versions/transition-stage", { name, version, stage, archive_existing_versions });

/** A prompt version's template: text, or chat messages when the type tag says "chat". */
export type PromptTemplate = { kind: "text"; text: string } | { kind: "chat"; messages: { role: string; content: string }[] };

export function promptTemplate(version: ModelVersion): PromptTemplate {
  const tags = version.tags ?? [];
  const raw = tags.find((tag) => tag.key === PROMPT_TEXT_TAG)?.value ?? "";
  const type = tags.find((tag) => tag.key === PROMPT_TYPE_TAG)?.value;
  if (type === "chat" || (type === undefined && raw.trimStart().startsWith("["))) {
    try {
      const parsed = JSON.parse(raw);
      if (Array.isArray(parsed)) {
        return {
          kind: "chat",
          messages: parsed.map((message) => ({
            role: String(message?.role ?? ""),
            content: typeof message?.content === "string" ? message.content : JSON.stringify(message?.content),
          })),
        };
      }
    } catch {
      // not JSON: show it as text
    }
  }
  return { kind: "text", text: raw };
}

/** The template as lines, for the diff: chat messages become "role: content" blocks. */
export function templateLines(template: PromptTemplate): string[] {
  if (template.kind === "text") return template.text.split("\n");
  return template.messages.flatMap((message) => `[${message.role}] ${message.content}`.split("\n"));
}

/** `json.dumps` of Python's standard library with its defaults (", " and ": " separators, non-ASCII escaped). */
export function pythonJsonDumps(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(", ")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([key, item]) => `${pythonJsonDumps(key)}: ${pythonJsonDumps(item)}`)
      .join(", ")}}`;
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const invalid = (message: string) => new ApiError(400, "INVALID_PARAMETER_VALUE", message);

/**
 * Registers a prompt version with the calls MLflow 3.17's `MlflowClient.register_prompt` makes, so
 * `mlflow.genai.load_prompt` reads it back: get the registered model; create it tagged
 * `mlflow.prompt.is_prompt` (description = commit message) when missing, else set the prompt tags on it;
 * then create a version with source "dummy-source", the commit message as description, and the tags plus
 * the prompt's own (`mlflow.prompt.text`, `_mlflow_prompt_type`). A failed first version removes the new prompt.
 */
export async function registerPrompt(name: string, template: PromptTemplate, commitMessage: string, tags: Tag[]): Promise<ModelVersion> {
  if (!name) throw invalid("Prompt name must be a non-empty string.");
  if (!PROMPT_NAME_RULE.test(name)) throw invalid("Prompt name can only contain alphanumeric characters, hyphens, underscores, and dots.");
  let existing: RegisteredModel | undefined;
  try {
    existing = await getRegisteredModel(name);
  } catch (failure) {
    if (!(failure instanceof ApiError && failure.code === "RESOURCE_DOES_NOT_EXIST")) throw failure;
  }
  if (existing && !isPrompt(existing))
    throw invalid(
      `Model '${name}' exists with the same name. MLflow does not allow registering a prompt with the same name as an existing model. Please choose a different name for the prompt.`,
    );
  const userTags = tags.filter((tag) => tag.key !== IS_PROMPT_TAG);
  if (existing) {
    for (const tag of userTags) await setRegisteredModelTag(name, tag.key, tag.value);
  } else {
    await createRegisteredModel(name, commitMessage, [{ key: IS_PROMPT_TAG, value: "true" }, ...userTags]);
  }
  const own =
    template.kind === "text"
      ? [
          { key: PROMPT_TYPE_TAG, value: "text" },
          { key: PROMPT_TEXT_TAG, value: template.text },
        ]
      : [
          { key: PROMPT_TYPE_TAG, value: "chat" },
          { key: PROMPT_TEXT_TAG, value: pythonJsonDumps(template.messages) },
        ];
  try {
    return await createModelVersion({
      name,
      source: PROMPT_SOURCE,
      description: commitMessage || undefined,
      tags: [...userTags, { key: IS_PROMPT_TAG, value: "true" }, ...own],
    });
  } catch (failure) {
    if (!existing) await deleteRegisteredModel(name).catch(() => undefined);
    throw failure;
  }
}
