import { useId, useState } from "react";
import type { Tag } from "../api";
import * as registry from "../registryApi";
import { filledTags, FormDialog, TagFields } from "./Dialog";

const ROLES = ["system", "user", "assistant"] as const;
type Message = { role: string; content: string };

/**
 * "Create prompt" (a name field) or "New version" of the prompt `name`: a text template or chat
 * messages, a commit message and tags, registered as MLflow's client registers them (`registerPrompt`).
 */
export function PromptFormDialog(props: {
  name?: string;
  initial?: registry.PromptTemplate;
  onClose: () => void;
  onCreated: (version: registry.ModelVersion) => void;
}) {
  const [name, setName] = useState(props.name ?? "");
  const [kind, setKind] = useState<"text" | "chat">(props.initial?.kind ?? "text");
  const [text, setText] = useState(props.initial?.kind === "text" ? props.initial.text : "");
  const [messages, setMessages] = useState<Message[]>(
    props.initial?.kind === "chat" ? props.initial.messages : [
      { role: "system", content: "" },
      { role: "user", content: "" },
    ],
  );
  const [commitMessage, setCommitMessage] = useState("");
  const hintId = useId();
  const [tags, setTags] = useState<Tag[]>([]);
  const template: registry.PromptTemplate = kind === "text" ? { kind, text } : { kind, messages };
  const filled = kind === "text" ? !!text.trim() : messages.length > 0 && messages.every((message) => message.content.trim());
  const setMessage = (index: number, field: keyof Message, value: string) =>
    setMessages(messages.map((message, at) => (at === index ? { ...message, [field]: value } : message)));

  return (
    <FormDialog
      title={props.name ? `New version of ${props.name}` : "Create prompt"}
      submitLabel={props.name ? "Create version" : "Create prompt"}
      canSubmit={!!name.trim() && filled}
      wide
      onClose={props.onClose}
      onSubmit={async () => props.onCreated(await registry.registerPrompt(name.trim(), template, commitMessage.trim(), filledTags(tags)))}
    >
      {props.name ? null : (
        <div className="field">
          <label>
            Name
            <input value={name} aria-describedby={`${hintId}-name`} onChange={(event) => setName(event.target.value)} />
          </label>
          <p className="hint" id={`${hintId}-name`}>
            Letters, digits, hyphens, underscores and dots.
          </p>
        </div>
      )}
      <fieldset>
        <legend>Format</legend>
        <div className="toolbar">
          <label>
            <input type="radio" name="prompt-kind" checked={kind === "text"} onChange={() => setKind("text")} />
            Text
          </label>
          <label>
            <input type="radio" name="prompt-kind" checked={kind === "chat"} onChange={() => setKind("chat")} />
            Chat messages
          </label>
        </div>
      </fieldset>
      {kind === "text" ? (
        <div className="field">
          <label>
            Template
            <textarea rows={8} value={text} aria-describedby={`${hintId}-template`} placeholder="Answer {{question}} in {{language}}." onChange={(event) => setText(event.target.value)} />
          </label>
          <p className="hint" id={`${hintId}-template`}>
            Variables are written {"{{variable}}"}.
          </p>
        </div>
      ) : (
        <fieldset>
          <legend>Messages</legend>
          {messages.map((message, index) => (
            <div key={index} className="chat-message-field">
              <div className="toolbar">
                <label>
                  Role of message {index + 1}
                  <select value={message.role} onChange={(event) => setMessage(index, "role", event.target.value)}>
                    {ROLES.map((role) => (
                      <option key={role} value={role}>
                        {role}
                      </option>
                    ))}
                  </select>
                </label>
                <button type="button" aria-label={`Remove message ${index + 1}`} onClick={() => setMessages(messages.filter((_, at) => at !== index))}>
                  Remove
                </button>
              </div>
              <textarea aria-label={`Content of message ${index + 1}`} rows={3} value={message.content} onChange={(event) => setMessage(index, "content", event.target.value)} />
            </div>
          ))}
          <div>
            <button type="button" onClick={() => setMessages([...messages, { role: "user", content: "" }])}>
              Add a message
            </button>
          </div>
        </fieldset>
      )}
      <label>
        Commit message
        <input value={commitMessage} onChange={(event) => setCommitMessage(event.target.value)} />
      </label>
      <TagFields tags={tags} onChange={setTags} />
    </FormDialog>
  );
}
