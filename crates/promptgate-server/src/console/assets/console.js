// promptgate console: vanilla JavaScript, no framework, no build step.
//
// Security: the access token lives in this closure only (never a cookie, never web storage), so
// the browser never sends it on its own and no other site can make requests with it: the console
// is CSRF-safe by construction. A reload forgets the token; navigation is hash-based so it never
// reloads. The page's Content-Security-Policy forbids inline script and style, so every element
// is built with the DOM API and styled by class.
'use strict';

(function () {
  const API = '/api/v2/ai/llm/gateway';
  const SCOPES = {
    read: 'ai:prompt:read',
    write: 'ai:prompt:write',
    telemetry: 'ai:telemetry:read',
    audit: 'ai:audit:read',
    admin: 'admin',
  };

  /** The signed-in session: token, client id, scopes. Memory only. */
  let session = null;
  let expiryTimer = null;
  /** Where to go after signing in (the route the user asked for). */
  let wanted = '#/prompts';
  /** Bumped on every navigation, so a slow page load never draws over a newer page. */
  let generation = 0;

  // ---------------------------------------------------------------- DOM helpers

  /** Creates an element: h('a', {href: '#/x'}, 'text', child…). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'class') el.className = value;
        else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
        else if (key === 'value') el.value = value;
        else if (key === 'checked') el.checked = Boolean(value);
        else if (key === 'selected') el.selected = Boolean(value);
        else el.setAttribute(key, value === true ? '' : String(value));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) el.setAttribute(key, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  let idCounter = 0;
  function uid(prefix) {
    idCounter += 1;
    return `${prefix}-${idCounter}`;
  }

  /** A label and its control, tied by id. */
  function field(labelText, control, hint) {
    if (!control.id) control.id = uid('f');
    const parts = [h('label', { for: control.id }, labelText), control];
    if (hint) {
      const hintId = uid('hint');
      addDescribedBy(control, hintId);
      parts.push(h('div', { id: hintId, class: 'muted' }, hint));
    }
    return h('div', { class: 'field' }, parts);
  }

  /** Replaces the alert in `container` (or removes it when `error` is null). */
  function showError(container, error) {
    const old = container.querySelector(':scope > .alert');
    if (old) old.remove();
    if (!error) return;
    const box = h('div', { role: 'alert', class: 'alert' }, errorText(error));
    if (error.details && error.details.length > 1) {
      box.append(h('ul', null, error.details.map((m) => h('li', null, m))));
    }
    container.prepend(box);
  }

  function showNotice(container, text) {
    const old = container.querySelector(':scope > .notice');
    if (old) old.remove();
    if (text) container.prepend(h('p', { class: 'notice', role: 'status' }, text));
  }

  /** Adds `id` to the element's aria-describedby (kept as a set of ids). */
  function addDescribedBy(el, id) {
    const ids = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    if (!ids.includes(id)) ids.push(id);
    el.setAttribute('aria-describedby', ids.join(' '));
  }

  function removeDescribedBy(el, id) {
    const ids = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter((x) => x && x !== id);
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }

  /**
   * Shows `message` right after `control` as its error (aria-invalid, and the message in its
   * aria-describedby so a screen reader reads it with the field), or removes it when `message`
   * is empty.
   */
  function setFieldError(control, message) {
    let box = control.fieldError;
    if (!message) {
      if (box) {
        box.remove();
        removeDescribedBy(control, box.id);
        control.fieldError = null;
      }
      control.removeAttribute('aria-invalid');
      return;
    }
    if (!box) {
      box = h('p', { class: 'field-error', id: uid('err') });
      control.after(box);
      addDescribedBy(control, box.id);
      control.fieldError = box;
    }
    box.textContent = message;
    control.setAttribute('aria-invalid', 'true');
  }

  /**
   * The problems of an error answer as [{field, message}]: one per `errors` entry when the
   * server reported several, else the message with each `details` entry's field.
   */
  function fieldProblems(error) {
    const body = error && error.body;
    if (!body || typeof body !== 'object') return [];
    if (Array.isArray(body.errors) && body.errors.length) {
      return body.errors.map((e) => ({
        field: (e.details && e.details[0] && e.details[0].fieldName) || null,
        message: e.message || body.message,
      }));
    }
    return (body.details || []).map((d) => ({ field: d.fieldName || null, message: body.message }));
  }

  /**
   * Puts each problem of `error` next to the control `controlFor(field)` names; answers the
   * problems no control took. Clears the errors of `controls` first. A control that holds a
   * whole list (`showFieldNames`, the tools' JSON) gets each message with its field's name
   * (`tools[1].function.name: …`), so the user knows which element is meant.
   */
  function placeFieldErrors(controls, error, controlFor) {
    for (const c of controls) setFieldError(c, null);
    const placed = new Map();
    const rest = [];
    for (const p of fieldProblems(error)) {
      const control = p.field ? controlFor(p.field) : null;
      if (control) {
        if (!placed.has(control)) placed.set(control, []);
        placed.get(control).push(control.showFieldNames ? `${p.field}: ${p.message}` : p.message);
      } else {
        rest.push(p);
      }
    }
    for (const [control, messages] of placed) setFieldError(control, messages.join('; '));
    return { placed: [...placed.keys()], rest };
  }

  function errorText(error) {
    if (error instanceof ApiError) return error.message;
    if (error && error.message) return `The request failed: ${error.message}`;
    return String(error);
  }

  function fmtInt(n) {
    return String(Math.round(Number(n) || 0));
  }
  /** A count, or an axis tick between counts (2.5). */
  function fmtCount(n) {
    return Number.isInteger(n) ? String(n) : Number(n).toFixed(1);
  }
  function fmtNum(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return '—';
    return Number(n).toFixed(digits);
  }
  function fmtPct(fraction, digits) {
    if (fraction === null || fraction === undefined) return '—';
    return `${(fraction * 100).toFixed(digits === undefined ? 1 : digits)}%`;
  }
  function fmtTime(text) {
    if (!text) return '';
    const d = new Date(text);
    if (Number.isNaN(d.getTime())) return text;
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  // ---------------------------------------------------------------- API

  /** An error answer of the API, with the ErrorBody's message. */
  class ApiError extends Error {
    constructor(status, body) {
      const message = (body && (body.message || body.error_description || body.error)) ||
        `the server answered ${status}`;
      super(message);
      this.status = status;
      this.body = body;
      this.code = body && body.code;
      const errors = (body && Array.isArray(body.errors)) ? body.errors : [];
      this.details = errors.map((e) => e.message).filter(Boolean);
    }
  }

  /** Calls the API with the session's token. Answers {data, etag, status}. */
  async function api(method, path, options) {
    const opts = options || {};
    const headers = { Accept: 'application/json' };
    if (session) headers.Authorization = `Bearer ${session.token}`;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.ifMatch) headers['If-Match'] = opts.ifMatch;
    let url = path.startsWith('/') ? path : `${API}/${path}`;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) {
        if (v !== undefined && v !== null && v !== '') q.set(k, v);
      }
      const qs = q.toString();
      if (qs) url += `?${qs}`;
    }
    const response = await fetch(url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: 'omit',
      cache: 'no-store',
    });
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = { message: text }; }
    }
    if (!response.ok) {
      if (response.status === 401 && session && !opts.noSignOut) {
        signOut('Your session has expired or was revoked; sign in again.');
      }
      throw new ApiError(response.status, data);
    }
    return { data, etag: response.headers.get('ETag'), status: response.status };
  }

  /** Every entity of a paginated listing (bounded, so a huge log cannot hang the page). */
  async function listAll(path, query, maxPages) {
    const all = [];
    let cursor = null;
    for (let page = 0; page < (maxPages || 20); page += 1) {
      const q = Object.assign({}, query, { pageSize: 500 });
      if (cursor) q.cursor = cursor;
      const { data } = await api('GET', path, { query: q });
      all.push(...(data.entities || []));
      cursor = data.nextPageCursor;
      if (!cursor) break;
    }
    return all;
  }

  function can(scope) {
    return Boolean(session && session.scopes.has(scope));
  }

  // ---------------------------------------------------------------- versions (semver order)

  function parseSemver(v) {
    const m = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$/.exec(v || '');
    if (!m) return null;
    return { major: +m[1], minor: +m[2], patch: +m[3], pre: m[4] ? m[4].split('.') : [] };
  }

  function compareSemver(a, b) {
    const x = parseSemver(a);
    const y = parseSemver(b);
    if (!x || !y) return String(a).localeCompare(String(b));
    for (const k of ['major', 'minor', 'patch']) {
      if (x[k] !== y[k]) return x[k] - y[k];
    }
    if (!x.pre.length && !y.pre.length) return 0;
    if (!x.pre.length) return 1;
    if (!y.pre.length) return -1;
    for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i += 1) {
      if (x.pre[i] === undefined) return -1;
      if (y.pre[i] === undefined) return 1;
      const an = /^\d+$/.test(x.pre[i]);
      const bn = /^\d+$/.test(y.pre[i]);
      if (an && bn && +x.pre[i] !== +y.pre[i]) return +x.pre[i] - +y.pre[i];
      if (an !== bn) return an ? -1 : 1;
      if (x.pre[i] !== y.pre[i]) return x.pre[i] < y.pre[i] ? -1 : 1;
    }
    return 0;
  }

  function nextMinor(v) {
    const p = parseSemver(v);
    return p ? `${p.major}.${p.minor + 1}.0` : '';
  }

  // ---------------------------------------------------------------- templates

  /** A variable path: identifiers joined by dots (the gateway's `VariablePath`). */
  function isVariablePath(text) {
    return text.length > 0 && new TextEncoder().encode(text).length <= 256 &&
      text.split('.').every((s) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s));
  }

  /**
   * Parses a template as the gateway does (`promptgate-core/src/template.rs`): `{{name}}` or
   * `{{ name }}` (dotted names allowed), `\{{` a literal `{{`, a lone `}}` literal text, any
   * other `{{` an error. Answers the source cut into segments for highlighting
   * ({kind: 'text'|'escape'|'var'|'bad', raw, path}), the placeholders' paths in order, the
   * literal text (placeholders removed, escapes resolved: what the budget is counted on) and
   * the first error, if any. Parsing goes on after an error so the rest is still highlighted.
   */
  function parseTemplate(text) {
    const segments = [];
    const paths = [];
    let literal = '';
    let error = null;
    let escapes = 0;
    let pos = 0;
    const at = (index) => Array.from(text.slice(0, index)).length;
    for (;;) {
      const found = text.indexOf('{{', pos);
      if (found < 0) break;
      if (found > pos && text[found - 1] === '\\') {
        const before = text.slice(pos, found - 1);
        if (before) segments.push({ kind: 'text', raw: before });
        segments.push({ kind: 'escape', raw: '\\{{' });
        literal += `${before}{{`;
        escapes += 1;
        pos = found + 2;
        continue;
      }
      const before = text.slice(pos, found);
      if (before) segments.push({ kind: 'text', raw: before });
      literal += before;
      const close = text.indexOf('}}', found + 2);
      if (close < 0) {
        segments.push({ kind: 'bad', raw: text.slice(found) });
        if (!error) error = `the placeholder opened at character ${at(found)} is not closed with }}; write \\{{ for a literal {{`;
        pos = text.length;
        break;
      }
      const inner = text.slice(found + 2, close).replace(/^[ \t]+|[ \t]+$/g, '');
      const raw = text.slice(found, close + 2);
      if (isVariablePath(inner)) {
        segments.push({ kind: 'var', raw, path: inner });
        paths.push(inner);
      } else {
        segments.push({ kind: 'bad', raw });
        if (!error) error = `the placeholder at character ${at(found)} is not a variable name (letters, digits and _, dotted for nested values); write \\{{ for a literal {{`;
      }
      pos = close + 2;
    }
    const tail = text.slice(pos);
    if (tail) segments.push({ kind: 'text', raw: tail });
    literal += tail;
    return { segments, paths, literal, error, escapes };
  }

  /** The distinct top-level variables of some paths, in order of appearance. */
  function variableRoots(paths) {
    const roots = [];
    for (const p of paths) {
      const root = p.split('.')[0];
      if (!roots.includes(root)) roots.push(root);
    }
    return roots;
  }

  /**
   * The placeholders of a template field, kept up to date under it: a list of the detected
   * placeholders (tied to the field by aria-describedby, so it is read with it), the template's
   * error when it is malformed, and a highlighted copy of the text (placeholders marked,
   * `\{{` escapes shown as literals) that is only visual, hidden from assistive technology
   * because the list already says what it shows. Answers {element, update, parsed}.
   */
  function templateHints(textarea) {
    const listId = uid('ph');
    const list = h('div', { class: 'placeholders', id: listId });
    const view = h('div', { class: 'template-view', 'aria-hidden': 'true', hidden: true });
    addDescribedBy(textarea, listId);
    const state = { parsed: parseTemplate(textarea.value) };
    const update = () => {
      const parsed = parseTemplate(textarea.value);
      state.parsed = parsed;
      const distinct = [...new Set(parsed.paths)];
      const parts = [];
      if (distinct.length) {
        parts.push(h('span', { class: 'ph-title' }, `Placeholders (${distinct.length}): `),
          h('ul', null, distinct.map((p) => h('li', null, h('code', null, `{{${p}}}`)))));
      } else {
        parts.push(h('span', { class: 'muted' }, 'No placeholders.'));
      }
      if (parsed.escapes) parts.push(h('span', { class: 'muted' }, ' \\{{ writes a literal {{ (not a placeholder).'));
      if (parsed.error) parts.push(h('span', { class: 'template-error' }, ` Not a valid template: ${parsed.error}.`));
      list.replaceChildren(...parts);
      if (parsed.error) textarea.setAttribute('aria-invalid', 'true');
      else if (!textarea.fieldError) textarea.removeAttribute('aria-invalid');
      view.hidden = !textarea.value.includes('{{');
      if (!view.hidden) {
        view.replaceChildren(...parsed.segments.map((s) => {
          if (s.kind === 'var') return h('mark', { class: 'ph' }, s.raw);
          if (s.kind === 'escape') return h('span', { class: 'escape', title: 'a literal {{' }, s.raw);
          if (s.kind === 'bad') return h('span', { class: 'bad' }, s.raw);
          return s.raw;
        }));
      }
    };
    textarea.addEventListener('input', update);
    update();
    return { element: h('div', { class: 'template-hints' }, list, view), update, state };
  }

  /**
   * The template parts of a version form: the system prompt, the template messages (user and
   * assistant turns, added and removed), the variables schema as JSON, and a summary of the
   * variables the templates use against the schema. `init` is the version it starts from.
   */
  function templateEditor(init, systemPromptAttrs) {
    const systemPrompt = h('textarea', Object.assign({ name: 'systemPrompt', rows: '10' }, systemPromptAttrs || {}));
    systemPrompt.value = init.systemPrompt || '';
    const systemField = field('System prompt', systemPrompt, 'Placeholders: {{name}} or {{ customer.tier }}; \\{{ writes a literal {{.');
    const systemHints = templateHints(systemPrompt);
    const systemBlock = h('div', null, systemField, systemHints.element);

    // Template messages.
    const messages = (init.templateMessages || []).map((m) => ({ role: m.role === 'assistant' ? 'assistant' : 'user', content: m.content || '' }));
    let controls = [];
    const list = h('ol', { class: 'template-messages' });
    const empty = h('p', { class: 'muted' }, 'No template messages: the caller’s conversation follows the system prompt directly.');
    const addUser = h('button', { type: 'button', class: 'secondary' }, 'Add user message');
    const addAssistant = h('button', { type: 'button', class: 'secondary' }, 'Add assistant message');
    const onChange = [];
    const changed = () => onChange.forEach((f) => f());
    const drawMessages = () => {
      controls = messages.map((m, i) => {
        const n = i + 1;
        const role = h('select', { name: `templateMessages[${i}].role` },
          h('option', { value: 'user' }, 'user'), h('option', { value: 'assistant' }, 'assistant'));
        role.value = m.role;
        const content = h('textarea', { name: `templateMessages[${i}].content`, rows: '3', class: 'short' });
        content.value = m.content;
        const hints = templateHints(content);
        const remove = h('button', { type: 'button', class: 'secondary' }, `Remove message ${n}`);
        role.addEventListener('change', () => { m.role = role.value; changed(); });
        content.addEventListener('input', () => { m.content = content.value; changed(); });
        remove.addEventListener('click', () => {
          messages.splice(i, 1);
          drawMessages();
          changed();
          const next = controls[Math.min(i, controls.length - 1)];
          (next ? next.content : addUser).focus();
        });
        const item = h('li', { class: 'template-message' },
          h('div', { class: 'message-head' }, field(`Role of message ${n}`, role), remove),
          field(`Content of message ${n}`, content),
          hints.element);
        return { role, content, hints, item };
      });
      list.replaceChildren(...controls.map((c) => c.item));
      empty.hidden = messages.length > 0;
    };
    const add = (role) => {
      messages.push({ role, content: '' });
      drawMessages();
      changed();
      controls[controls.length - 1].content.focus();
    };
    addUser.addEventListener('click', () => add('user'));
    addAssistant.addEventListener('click', () => add('assistant'));
    drawMessages();
    const messagesBlock = h('fieldset', { class: 'template-fieldset' },
      h('legend', null, 'Template messages'),
      h('p', { class: 'muted' }, 'Fixed user and assistant turns, sent after the system prompt and before the caller’s conversation. They may hold placeholders too.'),
      list, empty,
      h('div', { class: 'actions' }, addUser, addAssistant));

    // Variables schema.
    const schema = h('textarea', { name: 'variablesSchema', rows: '6', class: 'short', spellcheck: 'false' });
    schema.value = init.variablesSchema === undefined || init.variablesSchema === null ? '' : JSON.stringify(init.variablesSchema, null, 2);
    const readSchema = () => {
      const text = schema.value.trim();
      if (!text) return { empty: true, value: null, error: null };
      try {
        const value = JSON.parse(text);
        if (!value || typeof value !== 'object' || Array.isArray(value)) {
          return { empty: false, value: null, error: 'The variables schema must be a JSON object (a JSON Schema such as {"type": "object", "properties": {…}}).' };
        }
        return { empty: false, value, error: null };
      } catch (e) {
        return { empty: false, value: null, error: `The variables schema is not JSON: ${e.message}.` };
      }
    };
    const summary = h('p', { class: 'variables-summary', id: uid('vars') });
    const drawSchema = () => {
      const read = readSchema();
      setFieldError(schema, read.error);
      const paths = systemHints.state.parsed.paths.concat(...controls.map((c) => c.hints.state.parsed.paths));
      const roots = variableRoots(paths);
      const parts = [roots.length
        ? `Variables the templates use: ${roots.join(', ')}.`
        : 'The templates use no variables.'];
      if (read.value) {
        const declared = read.value.properties && typeof read.value.properties === 'object' ? Object.keys(read.value.properties) : [];
        const missing = roots.filter((r) => !declared.includes(r));
        if (missing.length) parts.push(` Not declared in the schema’s "properties": ${missing.join(', ')} (the gateway refuses a version whose placeholders the schema does not declare).`);
      } else if (read.empty && roots.length) {
        parts.push(' Without a schema every placeholder is a required string.');
      }
      summary.textContent = parts.join('');
      summary.classList.toggle('warn', parts.length > 1 && Boolean(read.value));
    };
    schema.addEventListener('input', drawSchema);
    systemPrompt.addEventListener('input', drawSchema);
    onChange.push(drawSchema);
    drawSchema();
    const schemaField = field('Variables schema (JSON)', schema,
      'A JSON Schema (draft 2020-12) of an object whose properties are the variables, with types, enums, lengths and defaults. Leave it empty for none.');
    addDescribedBy(schema, summary.id);
    const schemaBlock = h('div', null, schemaField, summary);

    return {
      systemPrompt,
      systemBlock,
      messagesBlock,
      schemaBlock,
      /** The system prompt as the budget counts it: placeholders removed, escapes resolved. */
      countedText: () => {
        const parsed = systemHints.state.parsed;
        return parsed.error ? { text: systemPrompt.value, placeholders: false } : { text: parsed.literal, placeholders: parsed.paths.length > 0 };
      },
      messages: () => messages.map((m) => ({ role: m.role, content: m.content })),
      readSchema,
      schemaInput: schema,
      /** Every control that can carry a field error. */
      controls: () => [systemPrompt, schema, ...controls.flatMap((c) => [c.role, c.content])],
      /** The control a field name of the API's errors points at. */
      controlFor: (fieldName) => {
        if (fieldName === 'systemPrompt') return systemPrompt;
        if (fieldName === 'variablesSchema' || fieldName.startsWith('variablesSchema.')) return schema;
        const m = /^templateMessages\[(\d+)\](?:\.(role|content))?/.exec(fieldName);
        if (m && controls[+m[1]]) return m[2] === 'role' ? controls[+m[1]].role : controls[+m[1]].content;
        return null;
      },
    };
  }

  // ---------------------------------------------------------------- tools and structured output

  /** The names of the tools in a parsed `tools` array (only the well-formed ones). */
  function toolNames(tools) {
    return (Array.isArray(tools) ? tools : [])
      .map((t) => t && t.function && t.function.name)
      .filter((n) => typeof n === 'string' && n !== '');
  }

  /** A tool choice as the select holds it: '', 'auto', 'none', 'required' or 'function:NAME'. */
  function toolChoiceKey(choice) {
    if (choice === undefined || choice === null) return '';
    if (typeof choice === 'string') return choice;
    if (choice && choice.function && typeof choice.function.name === 'string') return `function:${choice.function.name}`;
    return '';
  }

  /** A tool choice in words: "auto", "lookup_order (forced)". */
  function toolChoiceText(choice) {
    const key = toolChoiceKey(choice);
    if (!key) return 'not set';
    return key.startsWith('function:') ? `${key.slice('function:'.length)} (forced)` : key;
  }

  /** A response format in words: "json_schema order_reply (strict)", "text". */
  function responseFormatText(format) {
    if (!format || !format.type) return 'not set (text)';
    if (format.type !== 'json_schema') return format.type;
    const spec = format.json_schema || {};
    return `json_schema ${spec.name || '(unnamed)'}${spec.strict ? ' (strict)' : ''}`;
  }

  /** A version's tools and output form in one line, for the versions table. */
  function toolsSummaryText(v) {
    const names = toolNames(v.tools);
    const parts = [];
    if (names.length) parts.push(`Tools: ${names.join(', ')}`);
    if (v.toolChoice !== undefined && v.toolChoice !== null) parts.push(`choice: ${toolChoiceText(v.toolChoice)}`);
    if (v.responseFormat) parts.push(`output: ${responseFormatText(v.responseFormat)}`);
    return parts.length ? parts.join('; ') : '—';
  }

  /**
   * The text the gateway counts for a version's tool definitions and output schema in
   * `systemPromptTokens` (`ToolSettings::counted_text` in promptgate-core): each tool's name,
   * description and parameters schema, then the output schema's name, description and schema,
   * one non-empty line each; schemas as compact JSON with sorted keys, as the gateway stores
   * them. Answers '' when nothing is counted (no tools, no json_schema format).
   */
  function toolCountedText(tools, format) {
    const lines = [];
    const push = (text) => { if (text) lines.push(text); };
    const schemaText = (value) => (value === undefined || value === null ? '' : JSON.stringify(sortedKeys(value)));
    for (const t of Array.isArray(tools) ? tools : []) {
      const f = (t && t.function) || {};
      push(typeof f.name === 'string' ? f.name : '');
      push(typeof f.description === 'string' ? f.description : '');
      push(schemaText(f.parameters));
    }
    if (format && format.type === 'json_schema' && format.json_schema) {
      const spec = format.json_schema;
      push(typeof spec.name === 'string' ? spec.name : '');
      push(typeof spec.description === 'string' ? spec.description : '');
      push(schemaText(spec.schema));
    }
    return lines.map((l) => `${l}\n`).join('');
  }

  /**
   * The tools and structured-output part of a version form: *Tools (JSON)* (the `tools` array
   * in OpenAI's shape, with an *Add function tool* helper), *Tool choice* (not set, auto,
   * none, required, or one of the defined tools) and *Response format* (not set, text,
   * json_object, json_schema with *Schema name*, *Schema description*, *Output schema (JSON)*
   * and *Strict*). Text that is not JSON is an error under its field as you type; everything
   * else (duplicate names, schemas, a choice naming no tool) is the gateway's to check, and its
   * 400 lands next to the field it names. `init` is the version it starts from.
   */
  function toolsEditor(init) {
    const onChange = [];
    const changed = () => onChange.forEach((f) => f());

    // Tools.
    const tools = h('textarea', { name: 'tools', rows: '8', class: 'short', spellcheck: 'false' });
    tools.value = Array.isArray(init.tools) && init.tools.length ? JSON.stringify(init.tools, null, 2) : '';
    // The tools' errors name an element of the array (tools[1].function.name): keep the name.
    tools.showFieldNames = true;
    const readTools = () => {
      const text = tools.value.trim();
      if (!text) return { value: [], error: null };
      try {
        const value = JSON.parse(text);
        if (!Array.isArray(value)) {
          return { value: null, error: 'The tools must be a JSON array of function tools ([{"type": "function", "function": {"name": …}}]).' };
        }
        return { value, error: null };
      } catch (e) {
        return { value: null, error: `The tools are not JSON: ${e.message}.` };
      }
    };
    const toolsSummary = h('p', { class: 'variables-summary', id: uid('tools') });
    const addTool = h('button', { type: 'button', class: 'secondary' }, 'Add function tool');
    addTool.addEventListener('click', () => {
      const read = readTools();
      if (read.error) {
        setFieldError(tools, `${read.error} Fix it before adding a tool.`);
        tools.focus();
        return;
      }
      const taken = toolNames(read.value);
      let name = 'new_tool';
      for (let n = 2; taken.includes(name); n += 1) name = `new_tool_${n}`;
      read.value.push({
        type: 'function',
        function: {
          name,
          description: 'What the tool does, for the model.',
          parameters: { type: 'object', properties: {}, required: [] },
        },
      });
      tools.value = JSON.stringify(read.value, null, 2);
      changed();
      tools.focus();
      // The new tool's name selected, ready to be typed over.
      const at = tools.value.lastIndexOf(`"${name}"`);
      if (at >= 0) tools.setSelectionRange(at + 1, at + 1 + name.length);
    });

    // Tool choice.
    const choice = h('select', { name: 'toolChoice' });
    let choiceKey = toolChoiceKey(init.toolChoice);
    const drawChoice = (names) => {
      const options = [
        h('option', { value: '' }, 'Not set (the model decides)'),
        h('option', { value: 'auto' }, 'auto (the model decides)'),
        h('option', { value: 'none' }, 'none (no tool calls)'),
        h('option', { value: 'required' }, 'required (some tool)'),
      ];
      for (const n of names) options.push(h('option', { value: `function:${n}` }, `${n} (always this tool)`));
      // A forced tool that is no longer defined stays selectable, so the gateway names it.
      if (choiceKey.startsWith('function:') && !names.includes(choiceKey.slice('function:'.length))) {
        options.push(h('option', { value: choiceKey }, `${choiceKey.slice('function:'.length)} (not among the tools)`));
      }
      choice.replaceChildren(...options);
      choice.value = choiceKey;
    };
    choice.addEventListener('change', () => { choiceKey = choice.value; });

    const drawTools = () => {
      const read = readTools();
      setFieldError(tools, read.error);
      const names = read.value ? toolNames(read.value) : null;
      if (names) {
        toolsSummary.textContent = read.value.length
          ? `${read.value.length} ${read.value.length === 1 ? 'tool' : 'tools'}: ${names.join(', ') || '(no names)'}.`
          : 'No tools: the model answers in text only.';
        drawChoice(names);
      }
    };
    tools.addEventListener('input', changed);
    onChange.push(drawTools);

    // Response format.
    const format = init.responseFormat || null;
    const spec = (format && format.json_schema) || {};
    const formatSelect = h('select', { name: 'responseFormat' },
      h('option', { value: '' }, 'Not set (free text)'),
      h('option', { value: 'text' }, 'text'),
      h('option', { value: 'json_object' }, 'json_object (any JSON object)'),
      h('option', { value: 'json_schema' }, 'json_schema (JSON matching a schema)'));
    formatSelect.value = (format && format.type) || '';
    const schemaName = h('input', { type: 'text', name: 'responseFormat.json_schema.name', spellcheck: 'false', autocomplete: 'off', value: spec.name || '' });
    const schemaDescription = h('input', { type: 'text', name: 'responseFormat.json_schema.description', autocomplete: 'off', value: spec.description || '' });
    const outputSchema = h('textarea', { name: 'responseFormat.json_schema.schema', rows: '6', class: 'short', spellcheck: 'false' });
    outputSchema.value = spec.schema === undefined || spec.schema === null ? '' : JSON.stringify(spec.schema, null, 2);
    const strict = h('input', { type: 'checkbox', name: 'responseFormat.json_schema.strict', checked: spec.strict === undefined ? true : Boolean(spec.strict) });
    strict.id = uid('f');
    const readOutputSchema = () => {
      const text = outputSchema.value.trim();
      if (!text) return { value: null, error: null };
      try {
        const value = JSON.parse(text);
        if (!value || typeof value !== 'object' || Array.isArray(value)) {
          return { value: null, error: 'The output schema must be a JSON object (a JSON Schema such as {"type": "object", "properties": {…}}).' };
        }
        return { value, error: null };
      } catch (e) {
        return { value: null, error: `The output schema is not JSON: ${e.message}.` };
      }
    };
    outputSchema.addEventListener('input', () => setFieldError(outputSchema, readOutputSchema().error));
    const schemaBox = h('fieldset', { class: 'template-fieldset' },
      h('legend', null, 'JSON schema of the output'),
      h('div', { class: 'grid2' },
        field('Schema name', schemaName, 'Letters, digits, _ or - (1 to 64).'),
        field('Schema description', schemaDescription, 'Optional; what the output is, for the model.')),
      field('Output schema (JSON)', outputSchema, 'A JSON Schema (draft 2020-12). The gateway validates every final output against it: the answer carries parsed or outputErrors, and telemetry records schemaValid.'),
      h('label', { class: 'inline', for: strict.id }, strict, 'Strict (the provider enforces the schema where it can)'));
    const drawFormat = () => { schemaBox.hidden = formatSelect.value !== 'json_schema'; };
    formatSelect.addEventListener('change', () => { drawFormat(); changed(); });
    [schemaName, schemaDescription, outputSchema].forEach((c) => c.addEventListener('input', changed));
    drawFormat();
    drawTools();
    if (!readTools().value) drawChoice([]);

    const toolsField = field('Tools (JSON)', tools,
      'An array of function tools in OpenAI’s shape: {"type": "function", "function": {"name", "description", "parameters": <JSON Schema>, "strict"}}, at most 128, names unique. Leave it empty for none.');
    addDescribedBy(tools, toolsSummary.id);
    const block = h('fieldset', { class: 'template-fieldset tools-fieldset' },
      h('legend', null, 'Tools and structured output'),
      toolsField, toolsSummary,
      h('div', { class: 'actions' }, addTool),
      h('div', { class: 'grid2' },
        field('Tool choice', choice, 'Whether and which tool the model must call.'),
        field('Response format', formatSelect, 'The form of the output; JSON formats are validated by the gateway.')),
      schemaBox);

    /**
     * The three fields as the API takes them, or {error, control} when text is not JSON.
     * `tools` is always an array ([] removes them), `toolChoice` and `responseFormat` null
     * when not set (null removes them on a PUT).
     */
    const read = () => {
      const t = readTools();
      if (t.error) return { error: t.error, control: tools };
      let toolChoice = null;
      if (choice.value.startsWith('function:')) toolChoice = { type: 'function', function: { name: choice.value.slice('function:'.length) } };
      else if (choice.value) toolChoice = choice.value;
      let responseFormat = null;
      if (formatSelect.value === 'json_schema') {
        const s = readOutputSchema();
        if (s.error) return { error: s.error, control: outputSchema };
        const jsonSchema = { name: schemaName.value.trim(), strict: strict.checked };
        if (schemaDescription.value.trim()) jsonSchema.description = schemaDescription.value.trim();
        if (s.value) jsonSchema.schema = s.value;
        responseFormat = { type: 'json_schema', json_schema: jsonSchema };
      } else if (formatSelect.value) {
        responseFormat = { type: formatSelect.value };
      }
      return { value: { tools: t.value, toolChoice, responseFormat } };
    };

    return {
      block,
      read,
      /** The text counted for the tools and output schema (see toolCountedText), '' when none. */
      countedText: () => {
        const t = readTools();
        const s = readOutputSchema();
        const fmt = formatSelect.value === 'json_schema'
          ? { type: 'json_schema', json_schema: { name: schemaName.value.trim(), description: schemaDescription.value.trim() || undefined, schema: s.value } }
          : null;
        return toolCountedText(t.value || [], fmt);
      },
      /** Called whenever the counted text may have changed. */
      onChange: (f) => onChange.push(f),
      inputs: [tools, outputSchema, schemaName, schemaDescription],
      controls: () => [tools, choice, formatSelect, schemaName, schemaDescription, outputSchema],
      controlFor: (fieldName) => {
        if (fieldName === 'tools' || fieldName.startsWith('tools[') || fieldName.startsWith('tools.')) return tools;
        if (fieldName === 'toolChoice' || fieldName.startsWith('toolChoice.')) return choice;
        if (fieldName === 'responseFormat.json_schema.name') return schemaName;
        if (fieldName === 'responseFormat.json_schema.description') return schemaDescription;
        if (fieldName.startsWith('responseFormat.json_schema.schema')) return outputSchema;
        if (fieldName === 'responseFormat' || fieldName.startsWith('responseFormat.')) return formatSelect;
        return null;
      },
    };
  }

  /** JSON values with object keys sorted (serde_json's order), recursively. */
  function sortedKeys(v) {
    if (Array.isArray(v)) return v.map(sortedKeys);
    if (v && typeof v === 'object') {
      return Object.keys(v).sort().reduce((o, k) => { o[k] = sortedKeys(v[k]); return o; }, {});
    }
    return v;
  }

  // ---------------------------------------------------------------- routing

  function route() {
    generation += 1;
    const hash = location.hash || '#/prompts';
    if (!session) {
      if (hash !== '#/signin') wanted = hash;
      if (hash !== '#/signin') {
        history.replaceState(null, '', '#/signin');
      }
      renderSignIn();
      return;
    }
    if (hash === '#/signin' || hash === '#/' || hash === '#') {
      location.hash = '#/prompts';
      return;
    }
    markNav(hash);
    let m;
    if (hash === '#/prompts') return renderPromptList();
    if (hash === '#/prompts/new') return renderNewPrompt();
    if ((m = /^#\/prompts\/([^/]+)$/.exec(hash))) return renderPrompt(decodeURIComponent(m[1]));
    if (hash === '#/audit') return renderAudit();
    if (hash === '#/api-keys') return renderApiKeys();
    return renderNotFound();
  }

  function markNav(hash) {
    const prompts = document.getElementById('nav-prompts');
    const audit = document.getElementById('nav-audit');
    const keys = document.getElementById('nav-api-keys');
    prompts.removeAttribute('aria-current');
    audit.removeAttribute('aria-current');
    keys.removeAttribute('aria-current');
    if (hash.startsWith('#/prompts')) prompts.setAttribute('aria-current', 'page');
    if (hash.startsWith('#/audit')) audit.setAttribute('aria-current', 'page');
    if (hash.startsWith('#/api-keys')) keys.setAttribute('aria-current', 'page');
  }

  /** Replaces the main content with a page whose first heading is `title`. */
  function page(title, ...children) {
    const main = document.getElementById('main');
    const heading = h('h1', { tabindex: '-1' }, title);
    main.replaceChildren(heading);
    append(main, children);
    document.title = `${title} · promptgate console`;
    return { main, heading };
  }

  function focusHeading() {
    const heading = document.querySelector('main h1');
    if (heading && document.activeElement === document.body) heading.focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- sign-in

  function renderSignIn(message) {
    document.getElementById('main-nav').hidden = true;
    const idInput = h('input', { type: 'text', name: 'client_id', autocomplete: 'username', required: true, spellcheck: 'false' });
    const secretInput = h('input', { type: 'password', name: 'client_secret', autocomplete: 'current-password', required: true });
    const button = h('button', { type: 'submit' }, 'Sign in');
    const form = h('form', { class: 'signin', novalidate: true },
      field('Client ID', idInput),
      field('Client secret', secretInput),
      h('div', { class: 'actions' }, button));
    const { main } = page('Sign in',
      h('p', { class: 'muted' }, 'Sign in with an OAuth client of this gateway. The token stays in this tab’s memory: reloading the page signs you out.'),
      form);
    if (message) showNotice(form, message);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        await signIn(idInput.value.trim(), secretInput.value);
        secretInput.value = '';
        const target = wanted && wanted !== '#/signin' ? wanted : '#/prompts';
        if (location.hash === target) route(); else location.hash = target;
      } catch (error) {
        showError(form, error);
      } finally {
        button.disabled = false;
      }
    });
    idInput.focus();
    return main;
  }

  async function signIn(clientId, secret) {
    if (!clientId || !secret) throw new ApiError(400, { message: 'Enter a client ID and a client secret.' });
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret });
    const response = await fetch('/oauth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: body.toString(),
      credentials: 'omit',
      cache: 'no-store',
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok || !data || !data.access_token) {
      const description = data && (data.error_description || data.error);
      const code = data && data.error && data.error_description ? ` (${data.error})` : '';
      let message = description ? `Sign-in failed: ${description}${code}` : `Sign-in failed: the server answered ${response.status}`;
      const retry = response.headers.get('Retry-After');
      if (response.status === 429 && retry) message += `; try again in ${retry} s`;
      throw new ApiError(response.status, { message });
    }
    session = {
      token: data.access_token,
      clientId,
      scopes: new Set(String(data.scope || '').split(/\s+/).filter(Boolean)),
    };
    if (expiryTimer) clearTimeout(expiryTimer);
    const seconds = Number(data.expires_in) || 0;
    if (seconds > 0 && seconds < 2147483) {
      expiryTimer = setTimeout(() => signOut('Your session expired; sign in again.'), seconds * 1000);
    }
    const nav = document.getElementById('main-nav');
    document.getElementById('client-id').textContent = clientId;
    document.getElementById('nav-audit-item').hidden = !can(SCOPES.audit);
    document.getElementById('nav-api-keys-item').hidden = !can(SCOPES.admin);
    nav.hidden = false;
  }

  function signOut(message) {
    session = null;
    if (expiryTimer) clearTimeout(expiryTimer);
    expiryTimer = null;
    document.getElementById('main-nav').hidden = true;
    document.getElementById('client-id').textContent = '';
    wanted = '#/prompts';
    generation += 1;
    if (location.hash !== '#/signin') history.replaceState(null, '', '#/signin');
    renderSignIn(message);
  }

  // ---------------------------------------------------------------- prompts list

  async function renderPromptList() {
    const gen = generation;
    const search = h('input', { type: 'search', placeholder: 'part of a name' });
    const tbody = h('tbody');
    const table = h('table', null,
      h('caption', { class: 'visually-hidden' }, 'Prompts'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Default version'),
        h('th', { scope: 'col' }, 'Versions'),
        h('th', { scope: 'col' }, 'Model endpoint'),
        h('th', { scope: 'col' }, 'Updated'))),
      tbody);
    const summary = h('p', { class: 'muted', role: 'status' }, 'Loading prompts…');
    const toolbar = h('div', { class: 'toolbar' },
      field('Search prompts', search),
      can(SCOPES.write) ? h('p', null, h('a', { href: '#/prompts/new', class: 'button-link' }, 'New prompt')) : null);
    const container = h('div', null, toolbar, summary, table);
    page('Prompts', container);
    focusHeading();
    let prompts = [];
    const draw = () => {
      const needle = search.value.trim().toLowerCase();
      const shown = prompts.filter((p) => !needle || p.name.toLowerCase().includes(needle));
      tbody.replaceChildren(...shown.map((p) => h('tr', null,
        h('td', null, h('a', { href: `#/prompts/${encodeURIComponent(p.id)}` }, p.name)),
        h('td', null, p.status),
        h('td', null, (p.trafficDistribution && p.trafficDistribution.defaultVersion) || p.version),
        h('td', null, (p.versions || []).join(', ')),
        h('td', null, p.modelEndpointRef),
        h('td', null, fmtTime(p.updatedAt)))));
      summary.textContent = prompts.length === 0
        ? 'No prompts yet.'
        : `${shown.length} of ${prompts.length} prompts${needle ? ` matching “${search.value.trim()}”` : ''}.`;
    };
    search.addEventListener('input', draw);
    try {
      prompts = await listAll('prompts', {}, 20);
      if (gen !== generation) return;
      prompts.sort((a, b) => a.name.localeCompare(b.name));
      draw();
    } catch (error) {
      if (gen !== generation) return;
      summary.textContent = '';
      showError(container, error);
    }
  }

  // ---------------------------------------------------------------- live token count

  /**
   * Keeps `output` showing the server's count of `textarea`'s text against the budget, debounced
   * by 250 ms; stale answers (an older keystroke's) are dropped. `textOf` gives the text to count
   * ({text, placeholders}): for a template, its text with the placeholders removed, which is what
   * the gateway checks the budget on when the version is saved.
   */
  function liveCount(output, textarea, budgetInput, endpointOf, textOf, extraOf) {
    const counted = textOf || (() => ({ text: textarea.value, placeholders: false }));
    let timer = null;
    let sequence = 0;
    let last = null;
    const draw = () => {
      if (!last) return;
      const budget = parseInt(budgetInput.value, 10);
      const tokenizer = `${last.tokenizer}${last.exact ? '' : ', estimate'}${last.placeholders ? ', placeholders not counted' : ''}${last.toolTokens ? `, of which ${last.toolTokens} for tool definitions and the output schema` : ''}`;
      const over = Number.isFinite(budget) && last.tokens > budget;
      output.textContent = Number.isFinite(budget)
        ? `${last.tokens} / ${budget} tokens (${tokenizer})${over ? ' — over budget' : ''}`
        : `${last.tokens} tokens (${tokenizer})`;
      output.classList.toggle('over', over);
    };
    const count = async () => {
      sequence += 1;
      const mine = sequence;
      const endpoint = endpointOf();
      if (!endpoint) {
        output.textContent = 'Choose a model endpoint to count tokens';
        return;
      }
      const what = counted();
      // Tool definitions and the output schema count in systemPromptTokens too, counted apart
      // from the system prompt as the gateway counts them (a sum of two counts).
      const extra = extraOf ? extraOf() : '';
      try {
        const { data } = await api('POST', '/console/api/token-count', {
          body: { modelEndpointRef: endpoint, text: what.text },
        });
        let toolTokens = 0;
        if (extra) {
          const more = await api('POST', '/console/api/token-count', {
            body: { modelEndpointRef: endpoint, text: extra },
          });
          toolTokens = more.data.tokens;
        }
        if (mine !== sequence) return;
        last = Object.assign({}, data, { tokens: data.tokens + toolTokens, toolTokens, placeholders: what.placeholders });
        draw();
      } catch (error) {
        if (mine !== sequence) return;
        last = null;
        output.classList.remove('over');
        output.textContent = `Cannot count tokens: ${errorText(error)}`;
      }
    };
    const schedule = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(count, 250);
    };
    textarea.addEventListener('input', schedule);
    budgetInput.addEventListener('input', draw);
    output.textContent = 'Counting tokens…';
    count();
    return { schedule, now: count };
  }

  // ---------------------------------------------------------------- new prompt

  async function renderNewPrompt() {
    const gen = generation;
    if (!can(SCOPES.write)) {
      page('New prompt', h('p', null, 'Your token lacks the ai:prompt:write scope, so it cannot create prompts.'));
      focusHeading();
      return;
    }
    const name = h('input', { type: 'text', name: 'name', required: true, spellcheck: 'false', autocomplete: 'off' });
    const endpoint = h('select', { name: 'modelEndpointRef', required: true });
    const editor = templateEditor({}, { required: true });
    const toolsBox = toolsEditor({});
    const systemPrompt = editor.systemPrompt;
    const temperature = h('input', { type: 'number', name: 'temperature', min: '0', max: '2', step: '0.1', value: '0.2' });
    const budget = h('input', { type: 'number', name: 'maxTokens', min: '1', step: '1', value: '1500' });
    const version = h('input', { type: 'text', name: 'version', value: '1.0.0', required: true, spellcheck: 'false' });
    const pii = h('input', { type: 'checkbox', name: 'pii', checked: true });
    const profanity = h('input', { type: 'checkbox', name: 'profanity' });
    const counter = h('p', { id: 'token-count', role: 'status', class: 'count' }, 'Counting tokens…');
    const submit = h('button', { type: 'submit' }, 'Create prompt');
    pii.id = uid('f');
    profanity.id = uid('f');
    const form = h('form', { novalidate: true },
      field('Name', name),
      field('Model endpoint', endpoint),
      editor.systemBlock,
      counter,
      h('div', { class: 'grid2' },
        field('Temperature', temperature),
        field('Token budget', budget, 'The most tokens the system prompt may have (placeholders not counted).'),
        field('Version', version)),
      h('fieldset', null, h('legend', null, 'Content filtering'),
        h('label', { class: 'inline', for: pii.id }, pii, 'Redact PII'),
        h('label', { class: 'inline', for: profanity.id }, profanity, 'Mask profanity')),
      editor.messagesBlock,
      editor.schemaBlock,
      toolsBox.block,
      h('div', { class: 'actions' }, submit, h('a', { href: '#/prompts' }, 'Cancel')));
    page('New prompt', form);
    focusHeading();
    let counting = null;
    try {
      const { data } = await api('GET', 'model-endpoints');
      if (gen !== generation) return;
      const endpoints = data.entities || [];
      endpoint.replaceChildren(...endpoints.map((e) => h('option', { value: e.ref },
        `${e.ref}${e.offline ? ' (offline)' : ''}${e.usable ? '' : ' (no key)'}`)));
      const preferred = endpoints.find((e) => e.usable && !e.offline) || endpoints.find((e) => e.usable) || endpoints[0];
      if (preferred) endpoint.value = preferred.ref;
    } catch (error) {
      showError(form, error);
    }
    counting = liveCount(counter, systemPrompt, budget, () => endpoint.value, editor.countedText, toolsBox.countedText);
    toolsBox.onChange(counting.schedule);
    endpoint.addEventListener('change', () => counting.now());
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const schema = editor.readSchema();
      if (schema.error) {
        showError(form, new ApiError(400, { message: schema.error }));
        editor.schemaInput.focus();
        return;
      }
      const toolSettings = toolsBox.read();
      if (toolSettings.error) {
        showError(form, new ApiError(400, { message: toolSettings.error }));
        toolSettings.control.focus();
        return;
      }
      submit.disabled = true;
      const filtering = [];
      if (pii.checked) filtering.push('pii');
      if (profanity.checked) filtering.push('profanity');
      const body = {
        name: name.value.trim(),
        modelEndpointRef: endpoint.value,
        systemPrompt: systemPrompt.value,
        temperature: numberOrUndefined(temperature.value),
        safetyGuardrails: { contentFiltering: filtering, maxTokens: numberOrUndefined(budget.value) },
        version: version.value.trim(),
      };
      const templateMessages = editor.messages();
      if (templateMessages.length) body.templateMessages = templateMessages;
      if (schema.value) body.variablesSchema = schema.value;
      const t = toolSettings.value;
      if (t.tools.length) body.tools = t.tools;
      if (t.toolChoice !== null) body.toolChoice = t.toolChoice;
      if (t.responseFormat !== null) body.responseFormat = t.responseFormat;
      try {
        const { data } = await api('POST', 'prompts', { body });
        showError(form, null);
        location.hash = `#/prompts/${encodeURIComponent(data.id)}`;
      } catch (error) {
        placeFieldErrors([...editor.controls(), ...toolsBox.controls()], error, (f) => editor.controlFor(f) || toolsBox.controlFor(f));
        showError(form, error);
      } finally {
        submit.disabled = false;
      }
    });
  }

  /** A number field's value for the API: left out when empty, sent as typed when not a number
   * (so the server names the field in its 400). */
  function numberOrUndefined(text) {
    if (String(text).trim() === '') return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  }

  // ---------------------------------------------------------------- prompt page

  /**
   * The prompt page. `flash` ({section, text, previewVersion}) is what the change that reloaded
   * it reports: a notice in that section, which takes the focus (the change's controls were
   * replaced), and the version the preview opens on.
   */
  async function renderPrompt(id, flash) {
    const gen = generation;
    const { main } = page('Prompt', h('p', { class: 'muted', role: 'status' }, 'Loading the prompt…'));
    focusHeading();
    let prompt;
    let etag;
    let versions;
    try {
      const got = await api('GET', `prompts/${encodeURIComponent(id)}`);
      prompt = got.data;
      etag = got.etag;
      versions = await listAll(`prompts/${encodeURIComponent(id)}/versions`, {}, 10);
    } catch (error) {
      if (gen !== generation) return;
      page(error.status === 404 ? 'Prompt not found' : 'Prompt', h('p', null, h('a', { href: '#/prompts' }, 'Back to prompts')));
      showError(document.getElementById('main'), error);
      return;
    }
    if (gen !== generation) return;
    versions.sort((a, b) => compareSemver(b.version, a.version));
    const state = {
      id, prompt, etag, versions, flash: flash || null, openPreview: null,
      reload: (next) => { if (gen === generation) renderPrompt(id, next); },
    };
    const traffic = prompt.trafficDistribution || {};
    const facts = h('dl', { class: 'facts' },
      h('dt', null, 'ID'), h('dd', { class: 'mono' }, prompt.id),
      h('dt', null, 'Status'), h('dd', null, prompt.status),
      h('dt', null, 'Default version'), h('dd', null, traffic.defaultVersion || prompt.version),
      h('dt', null, 'Split strategy'), h('dd', null, traffic.splitStrategy || 'sticky'),
      h('dt', null, 'Updated'), h('dd', null, fmtTime(prompt.updatedAt)));
    const sections = {
      labels: labelsSection(state),
      versions: versionsSection(state),
      preview: previewSection(state),
      compare: compareSection(state),
      addVersion: can(SCOPES.write) ? addVersionSection(state) : null,
      traffic: trafficSection(state),
      performance: can(SCOPES.telemetry) ? performanceSection(state) : null,
    };
    page(prompt.name,
      h('p', null, h('a', { href: '#/prompts' }, '← All prompts')),
      facts,
      sections.labels,
      sections.versions,
      sections.preview,
      sections.compare,
      sections.addVersion,
      sections.traffic,
      sections.performance);
    const flashed = flash && flash.section && sections[flash.section];
    if (flashed) {
      const heading = flashed.querySelector('h2');
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: false });
    } else {
      focusHeading();
    }
    return main;
  }

  function section(title, ...children) {
    const headingId = uid('h');
    return h('section', { 'aria-labelledby': headingId }, h('h2', { id: headingId }, title), children);
  }

  /** The labels that point at `version`, sorted. */
  function labelsOf(state, version) {
    return Object.entries(state.prompt.labels || {}).filter(([, v]) => v === version).map(([l]) => l).sort();
  }

  /** A version's variables as "name, name (optional)". */
  function variablesText(v) {
    const vars = v.variables || [];
    return vars.length ? vars.map((x) => (x.required ? x.name : `${x.name} (optional)`)).join(', ') : '—';
  }

  function versionsSection(state) {
    const rows = state.versions.map((v) => {
      const preview = h('button', { type: 'button', class: 'secondary small' }, 'Preview', h('span', { class: 'visually-hidden' }, ` ${v.version}`));
      preview.addEventListener('click', () => { if (state.openPreview) state.openPreview(v.version); });
      return h('tr', null,
        h('td', null, v.version),
        h('td', null, labelsOf(state, v.version).join(', ')),
        h('td', null, v.modelEndpointRef),
        h('td', { class: 'num' }, fmtNum(v.temperature, 2)),
        h('td', { class: 'num' }, `${v.systemPromptTokens}${v.safetyGuardrails && v.safetyGuardrails.maxTokens ? ` / ${v.safetyGuardrails.maxTokens}` : ''}`),
        h('td', null, variablesText(v)),
        h('td', null, toolsSummaryText(v)),
        h('td', null, fmtTime(v.createdAt)),
        h('td', null, preview));
    });
    return section('Versions',
      h('table', null,
        h('caption', { class: 'visually-hidden' }, 'Versions, newest first'),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Version'),
          h('th', { scope: 'col' }, 'Labels'),
          h('th', { scope: 'col' }, 'Model endpoint'),
          h('th', { scope: 'col', class: 'num' }, 'Temperature'),
          h('th', { scope: 'col', class: 'num' }, 'Tokens'),
          h('th', { scope: 'col' }, 'Variables'),
          h('th', { scope: 'col' }, 'Tools and output'),
          h('th', { scope: 'col' }, 'Created'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', null, rows)));
  }

  /**
   * A modal confirmation: `title` is the question, `text` what it does. Answers true when the
   * user confirms. The focus starts on Cancel (the safe choice), Escape cancels, and the focus
   * goes back to `opener` when it closes.
   */
  function confirmDialog({ title, text, confirm, opener }) {
    return new Promise((resolve) => {
      const titleId = uid('dlg');
      const textId = uid('dlg');
      const yes = h('button', { type: 'button' }, confirm);
      const no = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
      const dialog = h('dialog', { 'aria-labelledby': titleId, 'aria-describedby': textId, 'aria-modal': 'true' },
        h('h2', { id: titleId }, title),
        h('p', { id: textId }, text),
        h('div', { class: 'actions' }, yes, no));
      let answered = false;
      const done = (answer) => {
        if (answered) return;
        answered = true;
        dialog.close();
        dialog.remove();
        if (opener && opener.isConnected) opener.focus();
        resolve(answer);
      };
      yes.addEventListener('click', () => done(true));
      no.addEventListener('click', () => done(false));
      dialog.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
      document.body.append(dialog);
      dialog.showModal();
      no.focus();
    });
  }

  // ---------------------------------------------------------------- labels

  /** The 412 message of a label change. */
  const LABEL_STALE = 'The prompt changed since this page loaded (someone else changed it); reload the prompt and try again.';

  function labelsSection(state) {
    const labels = state.prompt.labels || {};
    const names = Object.keys(labels).sort();
    const writable = can(SCOPES.write);
    const container = h('div', { class: 'labels-box' });
    const versionOptions = () => state.versions.map((v) => h('option', { value: v.version }, v.version));
    const call = async (method, name, body, done) => {
      try {
        await api(method, `prompts/${encodeURIComponent(state.id)}/labels/${encodeURIComponent(name)}`, { body, ifMatch: state.etag });
        state.reload({ section: 'labels', text: done });
        return null;
      } catch (error) {
        if (error.status === 412) staleAlert(container, state, LABEL_STALE);
        else showError(container, error);
        return error;
      }
    };
    const move = async (name, from, to, opener) => {
      if (from === to) {
        showNotice(container, `${name} already points at ${to}.`);
        return null;
      }
      if (from) {
        const ok = await confirmDialog({
          title: `Move ${name} from ${from} to ${to}?`,
          text: `Invocations that name the label ${name} (and prompt:${state.prompt.name}@${name} on /v1) will be served by ${to} instead of ${from}. The traffic split is not changed. The move is audited.`,
          confirm: 'Move label',
          opener,
        });
        if (!ok) return null;
      }
      return call('PUT', name, { version: to }, from ? `Moved ${name} from ${from} to ${to}.` : `Created the label ${name} on ${to}.`);
    };

    let table;
    if (names.length === 0) {
      table = h('p', { class: 'muted' }, 'No labels yet.');
    } else {
      table = h('table', { class: 'labels' },
        h('caption', { class: 'visually-hidden' }, 'Labels and the versions they point at'),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Label'),
          h('th', { scope: 'col' }, 'Version'),
          writable ? h('th', { scope: 'col' }, 'Change') : null)),
        h('tbody', null, names.map((name) => {
          const current = labels[name];
          let change = null;
          if (writable) {
            const target = h('select', { name: `move-${name}` }, versionOptions());
            target.id = uid('f');
            target.value = current;
            const moveButton = h('button', { type: 'button' }, 'Move', h('span', { class: 'visually-hidden' }, ` ${name}`));
            const deleteButton = h('button', { type: 'button', class: 'secondary' }, 'Delete', h('span', { class: 'visually-hidden' }, ` ${name}`));
            moveButton.addEventListener('click', () => move(name, current, target.value, moveButton));
            deleteButton.addEventListener('click', async () => {
              const ok = await confirmDialog({
                title: `Delete the label ${name}?`,
                text: `${name} points at ${current}. Invocations that name it will get 404 label.not.found until it is created again. The version itself is kept. The deletion is audited.`,
                confirm: 'Delete label',
                opener: deleteButton,
              });
              if (ok) await call('DELETE', name, undefined, `Deleted the label ${name} (it pointed at ${current}).`);
            });
            change = h('td', null, h('div', { class: 'inline-controls' },
              h('label', { for: target.id, class: 'visually-hidden' }, `Move ${name} to`),
              target, moveButton, deleteButton));
          }
          return h('tr', null,
            h('th', { scope: 'row', class: 'mono' }, name),
            h('td', null, current),
            change);
        })));
    }

    let createForm = null;
    if (writable) {
      const nameInput = h('input', { type: 'text', name: 'labelName', spellcheck: 'false', autocomplete: 'off' });
      const versionSelect = h('select', { name: 'labelVersion' }, versionOptions());
      versionSelect.value = (state.prompt.trafficDistribution && state.prompt.trafficDistribution.defaultVersion) || state.versions[0].version;
      const create = h('button', { type: 'submit' }, 'Create label');
      createForm = h('form', { novalidate: true, class: 'label-form' },
        h('div', { class: 'toolbar' },
          field('Label name', nameInput, 'Lower-case letters, digits and -, starting with a letter (production, staging, canary-eu).'),
          field('Label version', versionSelect),
          h('div', null, create)));
      createForm.addEventListener('submit', async (event) => {
        event.preventDefault();
        const name = nameInput.value.trim();
        if (!name) {
          setFieldError(nameInput, 'Enter a label name.');
          nameInput.focus();
          return;
        }
        setFieldError(nameInput, null);
        // Not disabled while it runs: the confirmation gives the focus back to this button.
        const error = await move(name, labels[name] || null, versionSelect.value, create);
        if (error) {
          placeFieldErrors([nameInput, versionSelect], error, (f) => (f === 'label' ? nameInput : (f === 'version' ? versionSelect : null)));
        }
      });
    }

    append(container, [
      h('p', { class: 'muted' }, 'A label is a named pin to a version (production, staging): invocations that name it are served by that version, whatever the traffic split.'),
      table,
      createForm,
    ]);
    if (state.flash && state.flash.section === 'labels' && state.flash.text) showNotice(container, state.flash.text);
    return section('Labels', container);
  }

  // ---------------------------------------------------------------- render preview

  /** How a sample variable is typed in: as text, or as JSON (numbers, booleans, objects). */
  function variableKind(v, name) {
    const prop = v.variablesSchema && v.variablesSchema.properties && v.variablesSchema.properties[name];
    const dotted = [v.systemPrompt || '', ...(v.templateMessages || []).map((m) => m.content || '')]
      .some((t) => parseTemplate(t).paths.some((p) => p.startsWith(`${name}.`)));
    if (dotted) return 'json';
    if (!prop || typeof prop !== 'object') return 'string';
    const types = [].concat(prop.type || []);
    if (types.length === 0) {
      return Array.isArray(prop.enum) && prop.enum.some((x) => typeof x !== 'string') ? 'json' : 'string';
    }
    return types.includes('string') ? 'string' : 'json';
  }

  /** What the schema says of a variable, in words. */
  function variableHint(v, info, kind) {
    const prop = (v.variablesSchema && v.variablesSchema.properties && v.variablesSchema.properties[info.name]) || {};
    const parts = [info.required ? 'Required' : 'Optional'];
    if (prop.type) parts.push([].concat(prop.type).join(' or '));
    if (Array.isArray(prop.enum)) parts.push(`one of ${prop.enum.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')}`);
    if (prop.maxLength !== undefined) parts.push(`at most ${prop.maxLength} characters`);
    if (prop.default !== undefined) parts.push(`default ${typeof prop.default === 'string' ? prop.default : JSON.stringify(prop.default)}`);
    if (kind === 'json') parts.push('typed as JSON (e.g. 3, true, {"tier": "gold"})');
    return `${parts.join('; ')}.`;
  }

  /**
   * The Preview section: a saved version rendered by the gateway (`POST …/render`) with sample
   * variables typed into one input per variable, refreshed 300 ms after the last keystroke;
   * the rendered system prompt and template messages with their token counts; the API's
   * `variables.<name>` errors next to the inputs they concern.
   */
  function previewSection(state) {
    const select = h('select', { name: 'previewVersion' }, state.versions.map((v) => {
      const labels = labelsOf(state, v.version);
      return h('option', { value: v.version }, labels.length ? `${v.version} (${labels.join(', ')})` : v.version);
    }));
    select.value = (state.flash && state.flash.previewVersion) || state.versions[0].version;
    const inputsBox = h('div', { class: 'grid2 preview-vars' });
    const renderButton = h('button', { type: 'submit' }, 'Render preview');
    const status = h('p', { id: 'preview-status', role: 'status', class: 'count' });
    const output = h('div', { id: 'preview-output', class: 'preview-output' });
    const form = h('form', { novalidate: true },
      h('p', { class: 'muted' }, 'Renders a saved version as an invocation would (schema checked, defaults applied, PII redacted, blocked categories refused), with the gateway’s token counts, without calling a model. To preview an edit, add it as a version first.'),
      field('Version to preview', select),
      h('fieldset', null, h('legend', null, 'Sample variables'), inputsBox),
      h('div', { class: 'actions' }, renderButton));
    const container = h('div', null, form, status, output);
    const typed = {};
    let inputs = [];
    let timer = null;
    let sequence = 0;

    const version = () => state.versions.find((v) => v.version === select.value) || state.versions[0];

    const drawInputs = () => {
      const v = version();
      const vars = v.variables || [];
      inputs = vars.map((info) => {
        const kind = variableKind(v, info.name);
        const input = h('input', { type: 'text', name: `var-${info.name}`, spellcheck: 'false', autocomplete: 'off', value: typed[info.name] || '' });
        input.addEventListener('input', () => {
          typed[info.name] = input.value;
          if (timer) clearTimeout(timer);
          timer = setTimeout(run, 300);
        });
        return { name: info.name, kind, input, element: field(info.name, input, variableHint(v, info, kind)) };
      });
      inputsBox.replaceChildren(...(inputs.length
        ? inputs.map((i) => i.element)
        : [h('p', { class: 'muted' }, 'This version has no variables: it renders as it is.')]));
    };

    const drawOutput = (data) => {
      const max = data.maxTokens;
      const over = max !== undefined && max !== null && data.systemPromptTokens > max;
      const messageTokens = (data.templateMessages || []).reduce((t, m) => t + m.tokens, 0);
      const parts = [
        h('h3', null, 'Rendered system prompt'),
        h('p', { class: `count${over ? ' over' : ''}`, id: 'preview-system-tokens' },
          `${data.systemPromptTokens}${max !== undefined && max !== null ? ` / ${max}` : ''} tokens (${data.tokenizer})${over ? ' — over budget' : ''}`),
        h('pre', { class: 'rendered' }, data.systemPrompt),
      ];
      if ((data.templateMessages || []).length) {
        parts.push(h('h3', null, 'Rendered template messages'),
          h('ol', { class: 'rendered-messages' }, data.templateMessages.map((m, i) => h('li', null,
            h('p', { class: 'count' }, `Message ${i + 1}, ${m.role}: ${m.tokens} tokens`),
            h('pre', { class: 'rendered' }, m.content)))));
      }
      if ((data.fewShotExamples || []).length) {
        parts.push(h('h3', null, 'Rendered few-shot examples'),
          h('ol', { class: 'rendered-messages' }, data.fewShotExamples.map((e) => h('li', null,
            h('pre', { class: 'rendered' }, `User: ${e.input}\nAssistant: ${e.output}`)))));
      }
      parts.push(h('p', { class: 'total' }, `Total: ${data.systemPromptTokens + messageTokens} tokens (system prompt and template messages).`));
      output.replaceChildren(...parts);
      const used = Object.keys(data.variables || {});
      status.textContent = `Rendered ${data.version}${used.length ? ` with ${used.join(', ')}` : ''}: system prompt ${data.systemPromptTokens}${max !== undefined && max !== null ? ` / ${max}` : ''} tokens${(data.templateMessages || []).length ? `, template messages ${messageTokens} tokens` : ''}.`;
      status.classList.toggle('over', over);
    };

    const run = async () => {
      if (timer) clearTimeout(timer);
      timer = null;
      sequence += 1;
      const mine = sequence;
      const v = version();
      const variables = {};
      for (const { name, kind, input } of inputs) {
        const text = input.value;
        if (text === '') continue;
        if (kind === 'string') {
          variables[name] = text;
        } else {
          // Sent as typed when it is not JSON, so the gateway names the variable in its 400.
          try { variables[name] = JSON.parse(text); } catch (_) { variables[name] = text; }
        }
      }
      status.classList.remove('over');
      status.textContent = `Rendering ${v.version}…`;
      try {
        const { data } = await api('POST', `prompts/${encodeURIComponent(state.id)}/render`, { body: { version: v.version, variables } });
        if (mine !== sequence) return;
        for (const i of inputs) setFieldError(i.input, null);
        showError(container, null);
        drawOutput(data);
      } catch (error) {
        if (mine !== sequence) return;
        const { placed, rest } = placeFieldErrors(inputs.map((i) => i.input), error, (f) => {
          if (!f.startsWith('variables.')) return null;
          const name = f.slice('variables.'.length);
          const hit = inputs.find((i) => i.name === name || name.startsWith(`${i.name}.`));
          return hit ? hit.input : null;
        });
        output.replaceChildren();
        if (rest.length || placed.length === 0) showError(container, error);
        else showError(container, null);
        const named = placed.map((c) => `${c.name.replace(/^var-/, '')}: ${c.fieldError ? c.fieldError.textContent : ''}`);
        status.textContent = `Not rendered: ${named.length ? named.join('; ') : errorText(error)}`;
      }
    };

    // Renders at once when nothing is required or something is typed; otherwise waits for the
    // user's values, so that the form does not open full of "required" errors.
    const maybeRun = () => {
      const needsInput = (version().variables || []).some((x) => x.required);
      if (!needsInput || inputs.some((i) => i.input.value !== '')) {
        run();
      } else {
        sequence += 1;
        output.replaceChildren();
        showError(container, null);
        status.classList.remove('over');
        status.textContent = `Type sample variables to render ${version().version}.`;
      }
    };
    if (state.flash && state.flash.section === 'preview' && state.flash.previewVersion) {
      showNotice(container, `Saved version ${state.flash.previewVersion}. It gets no traffic until the split or a label names it; type sample variables below to preview it.`);
    }
    select.addEventListener('change', () => { drawInputs(); maybeRun(); });
    form.addEventListener('submit', (event) => { event.preventDefault(); run(); });
    drawInputs();
    maybeRun();
    state.openPreview = (v) => {
      select.value = v;
      drawInputs();
      const required = (version().variables || []).filter((x) => x.required).map((x) => x.name);
      const first = inputs.find((i) => required.includes(i.name)) || inputs[0];
      (first ? first.input : select).focus();
      maybeRun();
    };
    return section('Preview', container);
  }

  // ---------------------------------------------------------------- diff

  /** Line diff by longest common subsequence: [{op: 'eq'|'del'|'ins', line}]. */
  function diffLines(a, b) {
    const x = a.split('\n');
    const y = b.split('\n');
    // Trim the common head and tail so the quadratic table covers only the changed middle.
    let start = 0;
    while (start < x.length && start < y.length && x[start] === y[start]) start += 1;
    let endX = x.length;
    let endY = y.length;
    while (endX > start && endY > start && x[endX - 1] === y[endY - 1]) { endX -= 1; endY -= 1; }
    const mx = x.slice(start, endX);
    const my = y.slice(start, endY);
    const ops = [];
    for (let i = 0; i < start; i += 1) ops.push({ op: 'eq', a: x[i], b: y[i] });
    if (mx.length * my.length > 4000000) {
      mx.forEach((line) => ops.push({ op: 'del', a: line }));
      my.forEach((line) => ops.push({ op: 'ins', b: line }));
    } else {
      const n = mx.length;
      const m = my.length;
      const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
      for (let i = n - 1; i >= 0; i -= 1) {
        for (let j = m - 1; j >= 0; j -= 1) {
          table[i][j] = mx[i] === my[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
        }
      }
      let i = 0;
      let j = 0;
      while (i < n || j < m) {
        if (i < n && j < m && mx[i] === my[j]) { ops.push({ op: 'eq', a: mx[i], b: my[j] }); i += 1; j += 1; }
        else if (j < m && (i === n || table[i][j + 1] >= table[i + 1][j])) { ops.push({ op: 'ins', b: my[j] }); j += 1; }
        else { ops.push({ op: 'del', a: mx[i] }); i += 1; }
      }
    }
    for (let i = endX; i < x.length; i += 1) ops.push({ op: 'eq', a: x[i], b: y[i - endX + endY] });
    return ops;
  }

  /** Side-by-side rows: runs of removed and added lines are paired up row by row. */
  function sideBySide(ops) {
    const rows = [];
    let dels = [];
    let inss = [];
    const flush = () => {
      for (let k = 0; k < Math.max(dels.length, inss.length); k += 1) {
        rows.push({ left: dels[k], right: inss[k], kind: 'change' });
      }
      dels = [];
      inss = [];
    };
    for (const op of ops) {
      if (op.op === 'del') dels.push(op.a);
      else if (op.op === 'ins') inss.push(op.b);
      else { flush(); rows.push({ left: op.a, right: op.b, kind: 'eq' }); }
    }
    flush();
    return rows;
  }

  /** A two-column diff table of `before` and `after` text. */
  function diffTable(caption, leftTitle, rightTitle, before, after) {
    const rows = sideBySide(diffLines(before, after));
    let ln = 0;
    let rn = 0;
    let changes = 0;
    const body = rows.map((row) => {
      const cells = [];
      if (row.left !== undefined) {
        ln += 1;
        const removed = row.kind === 'change';
        if (removed) changes += 1;
        cells.push(h('td', { class: 'ln' }, ln));
        cells.push(h('td', { class: removed ? 'del' : 'same' },
          removed ? h('del', null, h('span', { class: 'visually-hidden' }, 'Removed: '), row.left) : row.left));
      } else {
        cells.push(h('td', { class: 'ln empty' }), h('td', { class: 'empty' }));
      }
      if (row.right !== undefined) {
        rn += 1;
        const added = row.kind === 'change';
        if (added) changes += 1;
        cells.push(h('td', { class: 'ln' }, rn));
        cells.push(h('td', { class: added ? 'ins' : 'same' },
          added ? h('ins', null, h('span', { class: 'visually-hidden' }, 'Added: '), row.right) : row.right));
      } else {
        cells.push(h('td', { class: 'ln empty' }), h('td', { class: 'empty' }));
      }
      return h('tr', null, cells);
    });
    const table = h('table', { class: 'diff' },
      h('caption', null, caption, changes === 0 ? ' (identical)' : ''),
      h('colgroup', null, h('col', { class: 'ln' }), h('col'), h('col', { class: 'ln' }), h('col')),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Line')),
        h('th', { scope: 'col' }, leftTitle),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Line')),
        h('th', { scope: 'col' }, rightTitle))),
      h('tbody', null, body));
    return table;
  }

  function settingsOf(v) {
    const g = v.safetyGuardrails || {};
    return [
      ['Model endpoint', v.modelEndpointRef],
      ['Temperature', fmtNum(v.temperature, 2)],
      ['Token budget', g.maxTokens === undefined || g.maxTokens === null ? 'none' : String(g.maxTokens)],
      ['Content filtering', (g.contentFiltering || []).join(', ') || 'none'],
      ['Blocked categories', (g.blockedCategories || []).join(', ') || 'none'],
      ['Few-shot examples', String((v.fewShotExamples || []).length)],
      ['Template messages', String((v.templateMessages || []).length)],
      ['Variables', variablesText(v)],
      ['Variables schema', v.variablesSchema ? 'yes (diff below)' : 'none'],
      ['Tools', toolNames(v.tools).join(', ') || 'none'],
      ['Tool choice', toolChoiceText(v.toolChoice)],
      ['Response format', responseFormatText(v.responseFormat)],
      ['System prompt tokens', `${v.systemPromptTokens} (${v.tokenizer})`],
      ['Created', fmtTime(v.createdAt)],
      ['Created by', v.createdBy],
    ];
  }

  function settingsTable(left, right) {
    const a = settingsOf(left);
    const b = settingsOf(right);
    return h('table', { class: 'settings-diff' },
      h('caption', null, 'Settings (rows that differ are highlighted)'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Setting'),
        h('th', { scope: 'col' }, left.version),
        h('th', { scope: 'col' }, right.version))),
      h('tbody', null, a.map(([name, value], i) => {
        const differs = value !== b[i][1];
        return h('tr', { class: differs ? 'changed' : null },
          h('th', { scope: 'row' }, name, differs ? h('span', { class: 'marker' }, ' (differs)') : null),
          h('td', null, value),
          h('td', null, b[i][1]));
      })));
  }

  function compareSection(state) {
    const options = () => state.versions.map((v) => h('option', { value: v.version }, v.version));
    const left = h('select', { name: 'left' }, options());
    const right = h('select', { name: 'right' }, options());
    right.value = state.versions[0].version;
    left.value = (state.versions[1] || state.versions[0]).version;
    const out = h('div', { class: 'compare', 'aria-live': 'polite' });
    const draw = () => {
      const a = state.versions.find((v) => v.version === left.value);
      const b = state.versions.find((v) => v.version === right.value);
      if (!a || !b) return;
      const messagesText = (v) => (v.templateMessages || [])
        .map((m, i) => `[message ${i + 1}, ${m.role}]\n${m.content}`).join('\n');
      const schemaText = (v) => prettyJson(v.variablesSchema);
      const toolsText = (v) => ((v.tools || []).length ? prettyJson(v.tools) : '');
      const formatText = (v) => (v.responseFormat ? prettyJson(v.responseFormat) : '');
      const optional = (what, left, right, table) => (left === '' && right === ''
        ? h('p', { class: 'muted' }, `Neither version has ${what}.`)
        : table);
      out.replaceChildren(
        diffTable(`System prompt: ${a.version} → ${b.version}`, a.version, b.version, a.systemPrompt, b.systemPrompt),
        optional('template messages', messagesText(a), messagesText(b),
          diffTable(`Template messages: ${a.version} → ${b.version}`, a.version, b.version, messagesText(a), messagesText(b))),
        optional('a variables schema', schemaText(a), schemaText(b),
          diffTable(`Variables schema: ${a.version} → ${b.version}`, a.version, b.version, schemaText(a), schemaText(b))),
        optional('tools', toolsText(a), toolsText(b),
          diffTable(`Tools: ${a.version} → ${b.version}`, a.version, b.version, toolsText(a), toolsText(b))),
        optional('a response format', formatText(a), formatText(b),
          diffTable(`Response format: ${a.version} → ${b.version}`, a.version, b.version, formatText(a), formatText(b))),
        settingsTable(a, b));
    };
    left.addEventListener('change', draw);
    right.addEventListener('change', draw);
    draw();
    return section('Compare versions',
      h('div', { class: 'toolbar' }, field('Left version', left), field('Right version', right)),
      out);
  }

  // ---------------------------------------------------------------- add version

  function addVersionSection(state) {
    const newest = state.versions[0];
    const g = newest.safetyGuardrails || {};
    const version = h('input', { type: 'text', name: 'version', value: nextMinor(newest.version), required: true, spellcheck: 'false' });
    const editor = templateEditor(newest);
    const toolsBox = toolsEditor(newest);
    const systemPrompt = editor.systemPrompt;
    const temperature = h('input', { type: 'number', name: 'temperature', min: '0', max: '2', step: '0.1', value: String(newest.temperature) });
    const budget = h('input', { type: 'number', name: 'maxTokens', min: '1', step: '1', value: g.maxTokens === undefined || g.maxTokens === null ? '' : String(g.maxTokens) });
    const counter = h('p', { id: 'new-version-token-count', role: 'status', class: 'count' }, 'Counting tokens…');
    const submit = h('button', { type: 'submit' }, 'Add version');
    const form = h('form', { novalidate: true },
      h('p', { class: 'muted' }, `Prefilled from ${newest.version}; model endpoint ${newest.modelEndpointRef}. A new version gets no traffic until the split or a label names it. Save it, then preview it in the Preview section with sample variables.`),
      field('Version', version),
      editor.systemBlock,
      counter,
      h('div', { class: 'grid2' }, field('Temperature', temperature), field('Token budget', budget, 'Counted on the system prompt with its placeholders removed.')),
      editor.messagesBlock,
      editor.schemaBlock,
      toolsBox.block,
      h('div', { class: 'actions' }, submit));
    const counting = liveCount(counter, systemPrompt, budget, () => newest.modelEndpointRef, editor.countedText, toolsBox.countedText);
    toolsBox.onChange(counting.schedule);
    const controls = () => [version, temperature, budget, ...editor.controls(), ...toolsBox.controls()];
    const controlFor = (f) => {
      if (f === 'version') return version;
      if (f === 'temperature') return temperature;
      if (f === 'safetyGuardrails.maxTokens') return budget;
      return editor.controlFor(f) || toolsBox.controlFor(f);
    };
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const schema = editor.readSchema();
      if (schema.error) {
        showError(form, new ApiError(400, { message: schema.error }));
        editor.schemaInput.focus();
        return;
      }
      const toolSettings = toolsBox.read();
      if (toolSettings.error) {
        showError(form, new ApiError(400, { message: toolSettings.error }));
        toolSettings.control.focus();
        return;
      }
      submit.disabled = true;
      const guardrails = { contentFiltering: g.contentFiltering || [] };
      if (g.blockedCategories) guardrails.blockedCategories = g.blockedCategories;
      const maxTokens = numberOrUndefined(budget.value);
      if (maxTokens !== undefined) guardrails.maxTokens = maxTokens;
      const body = {
        version: version.value.trim(),
        systemPrompt: systemPrompt.value,
        temperature: numberOrUndefined(temperature.value),
        safetyGuardrails: guardrails,
        // Always sent: fields left out would be taken from the newest version, so an emptied
        // list must say so ([] removes the messages, null the schema).
        templateMessages: editor.messages(),
        // The same for the tools ([] removes them) and the choice and format (null removes).
        tools: toolSettings.value.tools,
        toolChoice: toolSettings.value.toolChoice,
        responseFormat: toolSettings.value.responseFormat,
      };
      if (schema.value) body.variablesSchema = schema.value;
      else if (newest.variablesSchema) body.variablesSchema = null;
      try {
        await api('PUT', `prompts/${encodeURIComponent(state.id)}`, { body, ifMatch: state.etag });
        state.reload({ section: 'preview', previewVersion: body.version });
      } catch (error) {
        if (error.status === 412) {
          staleAlert(form, state, 'The prompt changed since this page loaded (someone else updated it); reload the prompt to see the current versions.');
        } else {
          placeFieldErrors(controls(), error, controlFor);
          showError(form, error);
        }
        submit.disabled = false;
      }
    });
    return section('Add version', form);
  }

  // ---------------------------------------------------------------- traffic

  /**
   * The share of sticky sessions that land on another version when the split goes from `before`
   * to `after` (both [{version, weight}] in routing order, weights summing to 1). A session's
   * point in [0, 1) picks the version whose interval on the cumulative weights holds it, so the
   * sessions that stay are exactly the overlap of each version's old and new intervals.
   */
  function movedShare(before, after) {
    const intervals = (list) => {
      const out = new Map();
      let at = 0;
      for (const { version, weight } of list) {
        const end = at + weight;
        if (weight > 0) {
          if (!out.has(version)) out.set(version, []);
          out.get(version).push([at, end]);
        }
        at = end;
      }
      return out;
    };
    const old = intervals(before);
    const now = intervals(after);
    let stay = 0;
    for (const [version, spans] of old) {
      for (const [a0, a1] of spans) {
        for (const [b0, b1] of now.get(version) || []) {
          stay += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
        }
      }
    }
    return Math.min(1, Math.max(0, 1 - stay));
  }

  /** The split as routing sees it: an empty list sends everything to the default version. */
  function effectiveSplit(traffic) {
    const list = (traffic.versions || []).filter((w) => w.weight > 0);
    if (list.length === 0) return [{ version: traffic.defaultVersion, weight: 1 }];
    const sum = list.reduce((t, w) => t + w.weight, 0);
    return list.map((w) => ({ version: w.version, weight: w.weight / sum }));
  }

  function fmtShare(fraction) {
    const pct = Math.round(fraction * 1000) / 10;
    return `${Number.isInteger(pct) ? pct.toFixed(0) : pct.toFixed(1)}%`;
  }

  function fmtTenths(tenths) {
    return Number.isInteger(tenths / 10) ? String(tenths / 10) : (tenths / 10).toFixed(1);
  }

  function trafficSection(state) {
    const traffic = state.prompt.trafficDistribution || {};
    const current = effectiveSplit(traffic);
    // Editor order: the routing order of today's split, then the other versions oldest first,
    // so that giving a share to a new version moves only that share.
    const order = current.map((w) => w.version);
    const others = state.versions.map((v) => v.version).filter((v) => !order.includes(v)).sort(compareSemver);
    order.push(...others);
    // Weights in tenths of a percent, integers, always summing to 1000.
    const tenths = order.map((v) => {
      const w = current.find((c) => c.version === v);
      return w ? Math.round(w.weight * 1000) : 0;
    });
    fixSum(tenths, -1);
    const writable = can(SCOPES.write);
    const inputs = order.map((version, i) => {
      const input = h('input', { type: 'number', min: '0', max: '100', step: '0.1', value: fmtTenths(tenths[i]), disabled: !writable, name: `weight-${version}` });
      let base = null;
      input.addEventListener('focus', () => { base = tenths.slice(); });
      input.addEventListener('input', () => {
        const value = Number(input.value);
        if (input.value.trim() === '' || !Number.isFinite(value)) return;
        if (!base) base = tenths.slice();
        const next = redistribute(base, i, Math.round(Math.min(100, Math.max(0, value)) * 10));
        next.forEach((t, j) => { tenths[j] = t; if (j !== i) inputs[j].value = fmtTenths(t); });
        total.textContent = `Total: ${fmtTenths(tenths.reduce((a, b) => a + b, 0))}%`;
      });
      input.addEventListener('change', () => {
        input.value = fmtTenths(tenths[i]);
        base = tenths.slice();
      });
      input.addEventListener('blur', () => { base = null; });
      return input;
    });
    const total = h('p', { class: 'total', id: 'traffic-total' }, `Total: ${fmtTenths(tenths.reduce((a, b) => a + b, 0))}%`);
    const strategyName = uid('strategy');
    const sticky = h('input', { type: 'radio', name: strategyName, value: 'sticky', checked: (traffic.splitStrategy || 'sticky') === 'sticky', disabled: !writable });
    const random = h('input', { type: 'radio', name: strategyName, value: 'random', checked: traffic.splitStrategy === 'random', disabled: !writable });
    sticky.id = uid('f');
    random.id = uid('f');
    const defaultSelect = h('select', { name: 'defaultVersion', disabled: !writable },
      state.versions.map((v) => h('option', { value: v.version }, v.version)));
    defaultSelect.value = traffic.defaultVersion || state.prompt.version;
    const review = h('button', { type: 'button', disabled: !writable }, 'Review change');
    const container = h('div', null,
      h('p', { class: 'muted' }, 'Weights always sum to 100%: changing one takes the difference from, or gives it to, the others.'),
      h('div', { class: 'weights' }, order.map((version, i) => field(`Weight of ${version} (%)`, inputs[i]))),
      total,
      h('fieldset', null, h('legend', null, 'Split strategy'),
        h('label', { class: 'inline', for: sticky.id }, sticky, 'Sticky'),
        h('label', { class: 'inline', for: random.id }, random, 'Random')),
      field('Default version', defaultSelect, 'Serves when the weights name no version.'),
      writable ? h('div', { class: 'actions' }, review) : h('p', { class: 'muted' }, 'Your token lacks ai:prompt:write, so the split is read-only.'));

    review.addEventListener('click', () => {
      const strategy = random.checked ? 'random' : 'sticky';
      const after = order.map((version, i) => ({ version, weight: tenths[i] / 1000 })).filter((w) => w.weight > 0);
      const moved = movedShare(current, after);
      const titleId = uid('dlg');
      const lines = order.map((version, i) => {
        const before = current.find((c) => c.version === version);
        return h('li', null, `${version}: ${fmtShare(before ? before.weight : 0)} → ${fmtTenths(tenths[i])}%`);
      });
      let impact;
      if (strategy === 'random') {
        impact = `Random split: every request is redrawn, so no session keeps its version; ${fmtShare(moved)} of traffic shifts between versions.`;
      } else if ((traffic.splitStrategy || 'sticky') === 'random') {
        impact = `Sessions will be pinned to a version from now on (sticky); compared with today's weights, ${fmtShare(moved)} of sessions will move to another version.`;
      } else {
        impact = `${fmtShare(moved)} of sessions will move to another version`;
      }
      const apply = h('button', { type: 'button' }, 'Apply');
      const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
      const dialog = h('dialog', { 'aria-labelledby': titleId, 'aria-modal': 'true' },
        h('h2', { id: titleId }, 'Review traffic change'),
        h('p', { class: 'impact' }, impact),
        h('ul', null, lines),
        h('p', null, `Strategy: ${strategy}. Default version: ${defaultSelect.value}.`),
        h('div', { class: 'actions' }, apply, cancel));
      const close = () => { dialog.close(); dialog.remove(); review.focus(); };
      cancel.addEventListener('click', close);
      dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(); });
      apply.addEventListener('click', async () => {
        apply.disabled = true;
        const body = {
          trafficDistribution: {
            versions: after.map((w) => ({ version: w.version, weight: w.weight })),
            splitStrategy: strategy,
            defaultVersion: defaultSelect.value,
          },
        };
        try {
          const { etag } = await api('PUT', `prompts/${encodeURIComponent(state.id)}`, { body, ifMatch: state.etag });
          state.etag = etag;
          dialog.close();
          dialog.remove();
          state.reload();
        } catch (error) {
          dialog.close();
          dialog.remove();
          if (error.status === 412) {
            staleAlert(container, state, 'The prompt changed since this page loaded (someone else updated it); reload the prompt and review the split again.');
          } else {
            showError(container, error);
          }
        }
      });
      document.body.append(dialog);
      dialog.showModal();
      cancel.focus();
    });
    return section('Traffic', container);
  }

  /**
   * The 412 alert, with a button that reloads the prompt from the server. Reloading the browser
   * page would sign the user out (the token lives in memory), so the console reloads the data.
   */
  function staleAlert(container, state, message) {
    showError(container, new ApiError(412, { message }));
    const box = container.querySelector(':scope > .alert');
    const reload = h('button', { type: 'button', class: 'secondary' }, 'Reload prompt');
    reload.addEventListener('click', () => state.reload());
    box.append(' ', reload);
  }

  /** Sets entry `i` of `base` to `value` and takes the difference from the others, in proportion. */
  function redistribute(base, i, value) {
    const next = base.slice();
    next[i] = value;
    const others = base.map((_, j) => j).filter((j) => j !== i);
    if (others.length === 0) { next[i] = 1000; return next; }
    const target = 1000 - value;
    const sum = others.reduce((t, j) => t + base[j], 0);
    for (const j of others) {
      next[j] = sum > 0 ? Math.floor(base[j] * target / sum) : Math.floor(target / others.length);
    }
    fixSum(next, i);
    return next;
  }

  /** Gives the rounding remainder to the largest entry other than `skip`, so the sum is 1000. */
  function fixSum(list, skip) {
    const rest = 1000 - list.reduce((t, x) => t + x, 0);
    if (rest === 0 || list.length === 0) return;
    let best = -1;
    list.forEach((x, j) => {
      if (j !== skip && (best < 0 || x > list[best])) best = j;
    });
    if (best < 0) best = 0;
    list[best] = Math.max(0, list[best] + rest);
  }

  // ---------------------------------------------------------------- performance

  const RANGES = [
    ['1h', 'Last hour', 3600],
    ['24h', 'Last 24 hours', 86400],
    ['7d', 'Last 7 days', 7 * 86400],
    ['30d', 'Last 30 days', 30 * 86400],
  ];

  function performanceSection(state) {
    const range = h('select', { name: 'range' }, RANGES.map(([v, label]) => h('option', { value: v }, label)));
    range.value = '24h';
    const traffic = state.prompt.trafficDistribution || {};
    const baseline = h('select', { name: 'baseline' }, state.versions.map((v) => h('option', { value: v.version }, v.version)));
    baseline.value = traffic.defaultVersion || state.prompt.version;
    const labelNames = Object.keys(state.prompt.labels || {}).sort();
    const labelFilter = h('select', { name: 'label' },
      h('option', { value: '' }, 'Any (all invocations)'),
      labelNames.map((l) => h('option', { value: l }, l)));
    const refresh = h('button', { type: 'button' }, 'Refresh');
    const verdict = h('p', { id: 'verdict', 'aria-live': 'polite' }, 'Loading telemetry…');
    const charts = h('div', { class: 'charts' });
    const tableBox = h('div');
    const container = h('div', null,
      h('div', { class: 'toolbar' },
        field('Time range', range),
        field('Compare against', baseline),
        field('Label', labelFilter, 'Only invocations that named this label.'),
        h('div', null, refresh)),
      verdict, charts, tableBox);
    const load = async () => {
      const gen = generation;
      refresh.disabled = true;
      verdict.className = '';
      verdict.textContent = 'Loading telemetry…';
      const seconds = RANGES.find((r) => r[0] === range.value)[2];
      const endMs = Date.now();
      const startMs = endMs - seconds * 1000;
      const start = new Date(startMs).toISOString().replace(/\.\d+Z$/, 'Z');
      try {
        const { data } = await api('GET', 'telemetry/summary', {
          query: { promptId: state.id, startTime: start, compareTo: baseline.value, groupBy: 'version', label: labelFilter.value },
        });
        // Requests over time come from the invocation records themselves, a bounded number of
        // pages; the summary above stays exact whatever this chart could read.
        let timeline = null;
        try {
          const records = [];
          let cursor = null;
          let complete = false;
          for (let pageNo = 0; pageNo < TIMELINE_PAGES; pageNo += 1) {
            const q = { promptId: state.id, startTime: start, pageSize: 500, label: labelFilter.value || undefined };
            if (cursor) q.cursor = cursor;
            const got = await api('GET', 'telemetry', { query: q });
            records.push(...(got.data.entities || []));
            cursor = got.data.nextPageCursor;
            if (!cursor) { complete = true; break; }
          }
          timeline = { records, complete, startMs, endMs, label: range.options[range.selectedIndex].text };
        } catch (_) {
          timeline = null;
        }
        if (gen !== generation) return;
        showError(container, null);
        drawPerformance(data.entities || [], baseline.value, verdict, charts, tableBox, timeline);
      } catch (error) {
        if (gen !== generation) return;
        verdict.textContent = 'No telemetry could be loaded.';
        showError(container, error);
      } finally {
        refresh.disabled = false;
      }
    };
    refresh.addEventListener('click', load);
    range.addEventListener('change', load);
    baseline.addEventListener('change', load);
    labelFilter.addEventListener('change', load);
    load();
    return section('Performance', container);
  }

  function drawPerformance(entities, baselineVersion, verdict, charts, tableBox, timeline) {
    const rows = entities.slice().sort((a, b) => compareSemver(a.version, b.version));
    // Verdict: plain words first, numbers after.
    const findings = [];
    let bad = false;
    let good = false;
    for (const e of rows) {
      const c = e.comparison;
      if (!c || e.version === c.against) continue;
      const er = c.errorRateDiff;
      const lat = c.meanLatencyMsDiff;
      const fb = c.feedbackMeanDiff;
      const sv = c.schemaValidRateDiff;
      if (er && er.significant && er.estimate > 0) {
        bad = true;
        findings.push(`${e.version} has a significantly higher error rate than ${c.against} (${signedPts(er.estimate)}, 95% CI ${signedPts(er.ci95[0])} to ${signedPts(er.ci95[1])}) — consider rolling back.`);
      } else if (er && er.significant && er.estimate < 0) {
        good = true;
        findings.push(`${e.version} has a significantly lower error rate than ${c.against} (${signedPts(er.estimate)}, 95% CI ${signedPts(er.ci95[0])} to ${signedPts(er.ci95[1])}).`);
      }
      if (lat && lat.significant && lat.estimate > 0) {
        bad = true;
        findings.push(`${e.version} is significantly slower than ${c.against} (mean latency ${signedMs(lat.estimate)}, 95% CI ${signedMs(lat.ci95[0])} to ${signedMs(lat.ci95[1])}) — consider rolling back.`);
      } else if (lat && lat.significant && lat.estimate < 0) {
        good = true;
        findings.push(`${e.version} is significantly faster than ${c.against} (mean latency ${signedMs(lat.estimate)}).`);
      }
      if (fb && fb.significant && fb.estimate < 0) {
        bad = true;
        findings.push(`${e.version} gets significantly worse feedback than ${c.against} (${fmtNum(fb.estimate, 2)}, 95% CI ${fmtNum(fb.ci95[0], 2)} to ${fmtNum(fb.ci95[1], 2)}) — consider rolling back.`);
      } else if (fb && fb.significant && fb.estimate > 0) {
        good = true;
        findings.push(`${e.version} gets significantly better feedback than ${c.against}.`);
      }
      // Higher is better for the schema-valid rate (outputs that match the JSON format).
      if (sv && sv.significant && sv.estimate < 0) {
        bad = true;
        findings.push(`${e.version} has a significantly lower schema-valid rate than ${c.against} (${signedPts(sv.estimate)}, 95% CI ${signedPts(sv.ci95[0])} to ${signedPts(sv.ci95[1])}) — consider rolling back.`);
      } else if (sv && sv.significant && sv.estimate > 0) {
        good = true;
        findings.push(`${e.version} has a significantly higher schema-valid rate than ${c.against} (${signedPts(sv.estimate)}, 95% CI ${signedPts(sv.ci95[0])} to ${signedPts(sv.ci95[1])}).`);
      }
      if (!(er && er.significant) && !(lat && lat.significant) && !(fb && fb.significant) && !(sv && sv.significant)) {
        findings.push(er || lat || sv
          ? `No significant difference between ${e.version} and ${c.against} yet (${e.count} vs ${(rows.find((r) => r.version === c.against) || { count: 0 }).count} requests).`
          : `Too little data to compare ${e.version} with ${c.against} yet.`);
      }
    }
    if (rows.length === 0) findings.push('No invocations in this time range.');
    else if (findings.length === 0) {
      findings.push(rows.length === 1 && rows[0].version === baselineVersion
        ? `Only ${baselineVersion} served requests in this time range; nothing to compare.`
        : `No other version served requests to compare with ${baselineVersion}.`);
    }
    verdict.textContent = findings.join(' ');
    verdict.className = bad ? 'bad' : (good ? 'good' : '');

    const versions = rows.map((r) => r.version);
    charts.replaceChildren();
    append(charts, [
      timeline ? chartBox('Requests over time', timelineChart(timeline, versions)) : null,
      chartBox('Requests', barChart({
        label: `Requests by version: ${rows.map((r) => `${r.version} ${r.count}`).join(', ') || 'none'}`,
        groups: versions, series: [{ name: 'Requests', values: rows.map((r) => r.count) }],
        format: fmtCount,
      })),
      chartBox('Latency (ms)', barChart({
        label: `Latency p50, p95 and p99 in milliseconds by version: ${rows.map((r) => r.latencyMs ? `${r.version} p50 ${fmtNum(r.latencyMs.p50, 0)}, p95 ${fmtNum(r.latencyMs.p95, 0)}, p99 ${fmtNum(r.latencyMs.p99, 0)}` : `${r.version} no data`).join('; ') || 'none'}`,
        groups: versions,
        series: ['p50', 'p95', 'p99'].map((p) => ({ name: p, values: rows.map((r) => (r.latencyMs ? r.latencyMs[p] : 0)) })),
        format: (v) => fmtNum(v, 0),
      })),
      chartBox('Tokens', barChart({
        label: `Tokens by version, prompt and completion: ${rows.map((r) => `${r.version} ${r.tokenUsage.prompt} prompt, ${r.tokenUsage.completion} completion`).join('; ') || 'none'}`,
        groups: versions,
        series: [
          { name: 'Prompt', values: rows.map((r) => r.tokenUsage.prompt) },
          { name: 'Completion', values: rows.map((r) => r.tokenUsage.completion) },
        ],
        format: fmtCount,
      })),
      chartBox('Error rate', barChart({
        label: `Error rate by version: ${rows.map((r) => `${r.version} ${fmtPct(r.errorRate)}`).join(', ') || 'none'}`,
        groups: versions, series: [{ name: 'Error rate', values: rows.map((r) => r.errorRate * 100) }], floor: 5,
        format: (v) => `${fmtNum(v, 1)}%`,
      })),
      rows.some((r) => r.schemaValidRate) ? chartBox('Schema-valid rate (95% CI)', barChart({
        label: `Schema-valid rate by version, the share of outputs that matched the JSON response format, with 95% confidence intervals: ${rows.map((r) => `${r.version} ${schemaValidText(r.schemaValidRate)}`).join('; ')}`,
        groups: versions,
        series: [{ name: 'Schema-valid rate', values: rows.map((r) => (r.schemaValidRate ? r.schemaValidRate.rate * 100 : 0)) }],
        intervals: [rows.map((r) => (r.schemaValidRate ? r.schemaValidRate.ci95.map((x) => x * 100) : null))],
        format: (v) => `${fmtNum(v, 0)}%`, max: 100,
      })) : null,
      chartBox('Feedback', barChart({
        label: `Mean feedback score (0 to 1) by version: ${rows.map((r) => `${r.version} ${r.feedback && r.feedback.mean !== null && r.feedback.mean !== undefined ? `${fmtNum(r.feedback.mean, 2)} from ${r.feedback.count}` : 'none'}`).join(', ') || 'none'}`,
        groups: versions, series: [{ name: 'Mean score', values: rows.map((r) => (r.feedback && r.feedback.mean) || 0) }],
        format: (v) => fmtNum(v, 2), max: 1,
      })),
      chartBox(`Difference from ${baselineVersion} (95% CI)`, ciChart(rows)),
    ]);

    // The schema-valid column only when some version's outputs were checked (a JSON format);
    // the cost columns only when a priced endpoint served some version (docs/cost.md).
    const checked = rows.some((r) => r.schemaValidRate);
    const priced = rows.some((r) => r.cost);
    tableBox.replaceChildren(h('table', null,
      h('caption', null, 'Per-version summary'),
      h('thead', null, h('tr', null, ['Version', 'Requests', 'Errors', 'Error rate', 'p50 ms', 'p95 ms', 'p99 ms', 'Tokens', 'Feedback', checked ? 'Schema valid' : null,
        priced ? 'Mean cost' : null, priced ? 'Total cost' : null]
        .filter(Boolean).map((c, i) => h('th', { scope: 'col', class: i > 0 ? 'num' : null }, c)))),
      h('tbody', null, rows.map((r) => h('tr', null,
        h('th', { scope: 'row' }, r.version),
        h('td', { class: 'num' }, fmtInt(r.count)),
        h('td', { class: 'num' }, fmtInt(r.errorCount)),
        h('td', { class: 'num' }, fmtPct(r.errorRate, 2)),
        h('td', { class: 'num' }, r.latencyMs ? fmtNum(r.latencyMs.p50, 0) : '—'),
        h('td', { class: 'num' }, r.latencyMs ? fmtNum(r.latencyMs.p95, 0) : '—'),
        h('td', { class: 'num' }, r.latencyMs ? fmtNum(r.latencyMs.p99, 0) : '—'),
        h('td', { class: 'num' }, fmtInt(r.tokenUsage.total)),
        h('td', { class: 'num' }, r.feedback && r.feedback.count ? `${fmtNum(r.feedback.mean, 2)} (${r.feedback.count})` : '—'),
        checked ? h('td', { class: 'num' }, schemaValidText(r.schemaValidRate)) : null,
        priced ? h('td', { class: 'num' }, meanCostText(r.cost)) : null,
        priced ? h('td', { class: 'num' }, r.cost ? fmtUsd(r.cost.totalUsd) : '—') : null)))));
  }

  /** A mean cost with its interval: "$0.000123 (95% CI $0.000101 to $0.000145)"; "—" unpriced. */
  function meanCostText(cost) {
    if (!cost) return '—';
    const ci = cost.meanCi95 ? ` (95% CI ${fmtUsd(cost.meanCi95[0])} to ${fmtUsd(cost.meanCi95[1])})` : '';
    return `${fmtUsd(cost.meanUsd)}${ci}`;
  }

  /**
   * US dollars with three significant digits below $1, so that fractions of a cent show
   * ("$0.000123", "$0.0105"), and cents from $1 on ("$12.35").
   */
  function fmtUsd(x) {
    const abs = Math.abs(x);
    const sign = x < 0 ? '−' : '';
    if (abs === 0) return '$0';
    if (abs >= 1) return `${sign}$${abs.toFixed(2)}`;
    const digits = Math.min(20, Math.ceil(-Math.log10(abs)) + 2);
    return `${sign}$${abs.toFixed(digits)}`;
  }

  /** A schema-valid rate with its interval: "40.0% (95% CI 16.8% to 68.7%; 4 of 10)". */
  function schemaValidText(rate) {
    if (!rate) return 'not checked';
    return `${fmtPct(rate.rate, 1)} (95% CI ${fmtPct(rate.ci95[0], 1)} to ${fmtPct(rate.ci95[1], 1)}; ${rate.valid} of ${rate.count})`;
  }

  function signedPts(fraction) {
    const pts = fraction * 100;
    return `${pts >= 0 ? '+' : '−'}${Math.abs(pts).toFixed(1)} pts`;
  }
  function signedMs(ms) {
    return `${ms >= 0 ? '+' : '−'}${Math.abs(ms).toFixed(0)} ms`;
  }

  /** How many pages of 500 invocation records the requests-over-time chart reads at most. */
  const TIMELINE_PAGES = 10;
  const TIMELINE_BUCKETS = 24;

  /** Requests per time bucket, one line per version. */
  function timelineChart(timeline, summaryVersions) {
    const { records, complete, startMs, endMs, label } = timeline;
    const span = Math.max(1, endMs - startMs);
    const bucketMs = span / TIMELINE_BUCKETS;
    const versions = summaryVersions.slice();
    for (const r of records) if (!versions.includes(r.version)) versions.push(r.version);
    versions.sort(compareSemver);
    const counts = new Map(versions.map((v) => [v, new Array(TIMELINE_BUCKETS).fill(0)]));
    for (const r of records) {
      const t = Date.parse(r.timestamp);
      if (Number.isNaN(t)) continue;
      const b = Math.min(TIMELINE_BUCKETS - 1, Math.max(0, Math.floor((t - startMs) / bucketMs)));
      counts.get(r.version)[b] += 1;
    }
    const width = 420;
    const height = 220;
    const left = 40;
    const top = 24;
    const bottom = 34;
    const plotW = width - left - 10;
    const plotH = height - top - bottom;
    const max = niceMax(Math.max(4, ...[...counts.values()].flat()));
    const bucketText = bucketMs >= 86400000 ? `${fmtNum(bucketMs / 86400000, 1)}-day` : (bucketMs >= 3600000 ? `${fmtNum(bucketMs / 3600000, 0)}-hour` : `${fmtNum(bucketMs / 60000, 1)}-minute`);
    const totals = versions.map((v) => `${v} ${counts.get(v).reduce((a, b) => a + b, 0)}`).join(', ');
    const busiest = versions.map((v) => {
      const c = counts.get(v);
      const peak = Math.max(...c);
      return peak > 0 ? `${v} peaks at ${peak} in the bucket starting ${fmtTime(new Date(startMs + c.indexOf(peak) * bucketMs).toISOString())}` : null;
    }).filter(Boolean).join('; ');
    const aria = `Requests over time by version, ${label.toLowerCase()} in ${TIMELINE_BUCKETS} ${bucketText} buckets` +
      `${complete ? '' : ` (the first ${records.length} requests of the range only)`}: ${totals || 'no requests'}${busiest ? `; ${busiest}` : ''}`;
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': aria, focusable: 'false' });
    for (let t = 0; t <= 4; t += 1) {
      const v = (max * t) / 4;
      const y = top + plotH - (v / max) * plotH;
      svg.append(s('line', { class: 'grid', x1: left, x2: width - 10, y1: y, y2: y }));
      svg.append(s('text', { x: left - 4, y: y + 4, 'text-anchor': 'end' }, fmtCount(v)));
    }
    svg.append(s('line', { class: 'axis', x1: left, x2: left, y1: top, y2: top + plotH }));
    const x = (b) => left + (b + 0.5) * (plotW / TIMELINE_BUCKETS);
    versions.forEach((v, si) => {
      const c = counts.get(v);
      const points = c.map((n, b) => `${x(b).toFixed(1)},${(top + plotH - (n / max) * plotH).toFixed(1)}`).join(' ');
      svg.append(s('polyline', { class: `line s${si % 4}`, points }));
      c.forEach((n, b) => {
        if (n > 0) {
          svg.append(s('circle', { class: `s${si % 4}`, cx: x(b), cy: top + plotH - (n / max) * plotH, r: 2.5 },
            s('title', null, `${v}: ${n} requests from ${fmtTime(new Date(startMs + b * bucketMs).toISOString())}`)));
        }
      });
      svg.append(s('rect', { class: `s${si % 4}`, x: left + si * 70, y: 4, width: 10, height: 10 }));
      svg.append(s('text', { x: left + si * 70 + 14, y: 13 }, v));
    });
    svg.append(s('text', { x: left, y: height - bottom + 16 }, fmtTime(new Date(startMs).toISOString())));
    svg.append(s('text', { x: width - 10, y: height - bottom + 16, 'text-anchor': 'end' }, 'now'));
    if (!complete) {
      svg.append(s('text', { x: width - 10, y: height - 4, 'text-anchor': 'end' }, `first ${records.length} requests only`));
    }
    return svg;
  }

  /** The axis maximum: the first of 1, 2, 4, 8 × 10^k at or above `v`, so the four ticks are round. */
  function niceMax(v) {
    const decade = 10 ** Math.floor(Math.log10(v));
    for (const c of [1, 2, 4, 8, 10]) {
      if (c * decade >= v) return c * decade;
    }
    return 10 * decade;
  }

  function chartBox(title, svg) {
    return h('figure', { class: 'chart' }, h('h3', null, title), svg);
  }

  /** A grouped bar chart: one group per version, one bar per series. */
  function barChart(spec) {
    const width = 420;
    const height = 220;
    const left = 52;
    const bottom = 34;
    const top = 24;
    const plotW = width - left - 10;
    const plotH = height - top - bottom;
    const all = spec.series.flatMap((x) => x.values);
    const max = spec.max || niceMax(Math.max(spec.floor || 1, ...all));
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': spec.label, focusable: 'false' });
    const ticks = 4;
    for (let t = 0; t <= ticks; t += 1) {
      const v = (max * t) / ticks;
      const y = top + plotH - (v / max) * plotH;
      svg.append(s('line', { class: 'grid', x1: left, x2: width - 10, y1: y, y2: y }));
      svg.append(s('text', { x: left - 4, y: y + 4, 'text-anchor': 'end' }, spec.format(v)));
    }
    svg.append(s('line', { class: 'axis', x1: left, x2: left, y1: top, y2: top + plotH }));
    const groupW = spec.groups.length ? plotW / spec.groups.length : plotW;
    const barW = Math.min(36, (groupW * 0.8) / Math.max(1, spec.series.length));
    spec.groups.forEach((g, gi) => {
      const gx = left + gi * groupW + (groupW - barW * spec.series.length) / 2;
      spec.series.forEach((series, si) => {
        const v = series.values[gi] || 0;
        const hgt = Math.max(0, (v / max) * plotH);
        const x = gx + si * barW;
        svg.append(s('rect', { class: `s${si}`, x, y: top + plotH - hgt, width: Math.max(1, barW - 2), height: hgt },
          s('title', null, `${g} ${series.name}: ${spec.format(v)}`)));
        // An interval, when given: a whisker from its low to its high end, with caps.
        const ci = spec.intervals && spec.intervals[si] && spec.intervals[si][gi];
        if (ci) {
          const cx = x + Math.max(1, barW - 2) / 2;
          const y0 = top + plotH - (Math.max(0, ci[0]) / max) * plotH;
          const y1 = top + plotH - (Math.min(max, ci[1]) / max) * plotH;
          svg.append(s('line', { class: 'whisker', x1: cx, x2: cx, y1: y0, y2: y1 }));
          svg.append(s('line', { class: 'whisker', x1: cx - 5, x2: cx + 5, y1: y0, y2: y0 }));
          svg.append(s('line', { class: 'whisker', x1: cx - 5, x2: cx + 5, y1: y1, y2: y1 }));
        }
      });
      svg.append(s('text', { x: left + gi * groupW + groupW / 2, y: height - bottom + 16, 'text-anchor': 'middle' }, g));
    });
    if (spec.groups.length === 0) {
      svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'No data'));
    }
    if (spec.series.length > 1) {
      spec.series.forEach((series, si) => {
        const x = left + si * 90;
        svg.append(s('rect', { class: `s${si}`, x, y: 4, width: 10, height: 10 }));
        svg.append(s('text', { x: x + 14, y: 13 }, series.name));
      });
    }
    return svg;
  }

  /** A forest plot of each version's difference from the baseline with its 95% interval. */
  function ciChart(rows) {
    const items = [];
    for (const r of rows) {
      const c = r.comparison;
      if (!c) continue;
      if (c.errorRateDiff) items.push({ label: `${r.version} error rate`, d: c.errorRateDiff, scale: 100, unit: ' pts', worseIfUp: true });
      if (c.meanLatencyMsDiff) items.push({ label: `${r.version} mean latency`, d: c.meanLatencyMsDiff, scale: 1, unit: ' ms', worseIfUp: true });
      if (c.feedbackMeanDiff) items.push({ label: `${r.version} feedback`, d: c.feedbackMeanDiff, scale: 1, unit: '', worseIfUp: false });
      if (c.schemaValidRateDiff) items.push({ label: `${r.version} schema valid`, d: c.schemaValidRateDiff, scale: 100, unit: ' pts', worseIfUp: false });
    }
    const describe = (it) => `${it.label} ${fmtNum(it.d.estimate * it.scale, 2)}${it.unit} (95% CI ${fmtNum(it.d.ci95[0] * it.scale, 2)} to ${fmtNum(it.d.ci95[1] * it.scale, 2)}${it.d.significant ? ', significant' : ', not significant'})`;
    const width = 420;
    const rowH = 30;
    const height = Math.max(80, 20 + items.length * rowH);
    const label = items.length
      ? `Difference from the baseline with 95% confidence intervals, each on its own scale: ${items.map(describe).join('; ')}`
      : 'Difference from the baseline: not enough data to compare';
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, focusable: 'false' });
    if (!items.length) {
      svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'Not enough data to compare'));
      return svg;
    }
    const left = 150;
    const plotW = width - left - 20;
    const mid = left + plotW / 2;
    svg.append(s('line', { class: 'zero', x1: mid, x2: mid, y1: 6, y2: height - 6 }));
    items.forEach((it, i) => {
      const y = 20 + i * rowH;
      // Each row on its own symmetric scale, so that whether the interval crosses zero is what
      // the eye compares; the numbers are in the tooltip, the label and the table.
      const span = Math.max(Math.abs(it.d.ci95[0]), Math.abs(it.d.ci95[1]), Math.abs(it.d.estimate), 1e-12) * 1.15;
      const x = (v) => mid + (v / span) * (plotW / 2);
      const worse = it.d.significant && (it.worseIfUp ? it.d.estimate > 0 : it.d.estimate < 0);
      const better = it.d.significant && !worse;
      const cls = worse ? 'ci ci-bad' : (better ? 'ci ci-good' : 'ci ci-none');
      svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, it.label));
      svg.append(s('line', { class: cls, x1: x(it.d.ci95[0]), x2: x(it.d.ci95[1]), y1: y, y2: y }));
      svg.append(s('line', { class: cls, x1: x(it.d.ci95[0]), x2: x(it.d.ci95[0]), y1: y - 5, y2: y + 5 }));
      svg.append(s('line', { class: cls, x1: x(it.d.ci95[1]), x2: x(it.d.ci95[1]), y1: y - 5, y2: y + 5 }));
      svg.append(s('circle', { class: cls, cx: x(it.d.estimate), cy: y, r: 4 }, s('title', null, describe(it))));
      const ex = x(it.d.estimate);
      const anchor = ex > left + plotW * 0.8 ? 'end' : (ex < left + plotW * 0.2 ? 'start' : 'middle');
      svg.append(s('text', { x: ex, y: y + 16, 'text-anchor': anchor },
        `${fmtNum(it.d.estimate * it.scale, 1)}${it.unit}${worse ? ' worse' : (better ? ' better' : '')}`));
    });
    return svg;
  }

  // ---------------------------------------------------------------- audit

  const ACTIONS = ['PROMPT_CREATED', 'VERSION_CREATED', 'TRAFFIC_UPDATED', 'PROMPT_ARCHIVED', 'LABEL_MOVED', 'LABEL_DELETED',
    'CLIENT_CREATED', 'CLIENT_DISABLED', 'CLIENT_SECRET_ROTATED', 'CONFIG_RELOADED'];

  /** Reads a time filter: RFC 3339, a date, or a date and time without zone (taken as UTC). */
  function parseTimeFilter(text, endOfDay) {
    const t = text.trim();
    if (!t) return { value: undefined };
    let candidate = t;
    if (/^\d{4}-\d{2}-\d{2}$/.test(t)) candidate = `${t}T${endOfDay ? '23:59:59' : '00:00:00'}Z`;
    else if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(t)) candidate = `${t.replace(' ', 'T')}${t.length === 16 ? ':00' : ''}Z`;
    const d = new Date(candidate);
    if (Number.isNaN(d.getTime())) return { error: `“${t}” is not a time; use e.g. 2026-11-27T09:00Z or 2026-11-27` };
    return { value: d.toISOString().replace(/\.000Z$/, 'Z') };
  }

  async function renderAudit() {
    if (!can(SCOPES.audit)) {
      page('Audit log', h('p', null, 'Your token lacks the ai:audit:read scope, so the audit log is hidden.'));
      focusHeading();
      return;
    }
    const promptId = h('input', { type: 'text', name: 'promptId', spellcheck: 'false', autocomplete: 'off' });
    const listId = uid('actions');
    const action = h('input', { type: 'text', name: 'action', list: listId, spellcheck: 'false', autocomplete: 'off' });
    const actor = h('input', { type: 'text', name: 'actor', spellcheck: 'false', autocomplete: 'off' });
    const from = h('input', { type: 'text', name: 'from', placeholder: '2026-11-27T09:00Z', spellcheck: 'false', autocomplete: 'off' });
    const to = h('input', { type: 'text', name: 'to', placeholder: '2026-11-27', spellcheck: 'false', autocomplete: 'off' });
    const applyButton = h('button', { type: 'submit' }, 'Apply filters');
    const exportButton = h('button', { type: 'button', class: 'secondary' }, 'Export');
    const form = h('form', { class: 'filters', novalidate: true },
      h('datalist', { id: listId }, ACTIONS.map((a) => h('option', { value: a }))),
      h('div', { class: 'grid2' },
        field('Prompt ID', promptId),
        field('Action', action),
        field('Actor', actor),
        field('From', from, 'RFC 3339 time or a date (UTC)'),
        field('To', to, 'RFC 3339 time or a date (UTC)')),
      h('div', { class: 'actions' }, applyButton, exportButton));
    const chain = h('p', { id: 'chain-status', role: 'status' }, 'Verifying the chain…');
    const head = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    const summary = h('p', { class: 'muted', role: 'status' }, 'Loading entries…');
    const tbody = h('tbody');
    const table = h('table', { class: 'audit' },
      h('caption', { class: 'visually-hidden' }, 'Audit entries, newest first'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Sequence'),
        h('th', { scope: 'col' }, 'Time'),
        h('th', { scope: 'col' }, 'Actor'),
        h('th', { scope: 'col' }, 'Action'),
        h('th', { scope: 'col' }, 'Prompt'),
        h('th', { scope: 'col' }, 'Changes'))),
      tbody);
    const entriesBox = h('div', null, summary, table);
    page('Audit log',
      section('Chain verification', chain),
      section('Latest signed head', head),
      section('Entries', form, entriesBox));
    focusHeading();
    let entries = [];

    const loadIntegrity = async () => {
      try {
        const { data } = await api('GET', 'audit-logs/verify');
        chain.replaceChildren(data.valid
          ? h('span', { class: 'chain-ok' }, `Chain valid: ${data.entries} entries, head sequence ${data.headSequence}`)
          : h('span', { class: 'chain-bad' }, `Chain invalid at sequence ${data.firstInvalidSequence}${data.reason ? `: ${data.reason}` : ''}`));
        if (data.rootHash) chain.append(h('span', { class: 'muted' }, ` (root ${data.rootHash.slice(0, 16)}…)`));
      } catch (error) {
        chain.textContent = `Chain not verified: ${errorText(error)}`;
      }
      try {
        const { data } = await api('GET', 'audit-logs/checkpoint');
        head.replaceChildren(h('dl', { class: 'facts' },
          h('dt', null, 'Tree size'), h('dd', null, String(data.treeSize)),
          h('dt', null, 'Root hash'), h('dd', { class: 'mono' }, data.rootHash),
          h('dt', null, 'Key ID'), h('dd', { class: 'mono' }, data.keyId),
          h('dt', null, 'Timestamp'), h('dd', null, data.timestamp),
          h('dt', null, 'Signature'), h('dd', { class: 'mono' }, data.signature)));
      } catch (error) {
        head.replaceChildren(h('p', null, error.status === 404 ? 'No signed head yet.' : `No signed head: ${errorText(error)}`));
      }
    };

    const drawEntries = () => {
      const newestFirst = entries.slice().sort((a, b) => b.sequence - a.sequence);
      tbody.replaceChildren(...newestFirst.flatMap((e) => {
        const describedBy = uid('entry');
        const toggle = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-describedby': describedBy }, 'Show changes');
        const detailRow = h('tr', { class: 'detail-row', hidden: true }, h('td', { colspan: '6' }));
        toggle.addEventListener('click', () => {
          const open = toggle.getAttribute('aria-expanded') !== 'true';
          toggle.setAttribute('aria-expanded', String(open));
          detailRow.hidden = !open;
          if (open && !detailRow.firstChild.firstChild) detailRow.firstChild.append(entryDetails(e));
        });
        return [
          h('tr', null,
            h('td', { class: 'num' }, String(e.sequence)),
            h('td', null, fmtTime(e.timestamp)),
            h('td', null, e.actor),
            h('td', null, e.action),
            h('td', null, e.promptId ? h('a', { href: `#/prompts/${encodeURIComponent(e.promptId)}`, class: 'mono' }, e.promptId) : '—'),
            h('td', null, toggle, h('span', { class: 'visually-hidden', id: describedBy }, `of entry ${e.sequence}`))),
          detailRow,
        ];
      }));
      summary.textContent = entries.length === 1 ? '1 entry.' : `${entries.length} entries.`;
    };

    const loadEntries = async () => {
      const query = {
        promptId: promptId.value.trim(),
        action: action.value.trim(),
        actor: actor.value.trim(),
      };
      const start = parseTimeFilter(from.value, false);
      const end = parseTimeFilter(to.value, true);
      const bad = start.error || end.error;
      if (bad) {
        showError(form, new ApiError(400, { message: bad }));
        return;
      }
      query.startTime = start.value;
      query.endTime = end.value;
      applyButton.disabled = true;
      summary.textContent = 'Loading entries…';
      try {
        entries = await listAll('audit-logs', query, 40);
        showError(form, null);
        drawEntries();
      } catch (error) {
        summary.textContent = '';
        showError(form, error);
      } finally {
        applyButton.disabled = false;
      }
    };

    form.addEventListener('submit', (event) => { event.preventDefault(); loadEntries(); });
    // Without filters, Export writes what `promptgate audit export` writes: every entry the
    // latest signed head covers, then that head, so that an auditor can check the file offline
    // (`promptgate audit verify --file audit-log.jsonl --public-key …`). With filters it writes
    // the entries shown, which a chain replay cannot check on their own (the file says so).
    exportButton.addEventListener('click', async () => {
      const filtered = [promptId, action, actor, from, to].some((input) => input.value.trim());
      const bySequence = (a, b) => a.sequence - b.sequence;
      let lines;
      exportButton.disabled = true;
      try {
        if (filtered) {
          lines = entries.slice().sort(bySequence).map((e) => JSON.stringify(e));
        } else {
          const { data: signed } = await api('GET', 'audit-logs/checkpoint');
          const all = await listAll('audit-logs', {}, Math.ceil(signed.treeSize / 500) + 1);
          const covered = all.filter((e) => e.sequence <= signed.treeSize).sort(bySequence);
          if (covered.length !== signed.treeSize) {
            throw new ApiError(500, { message: `the signed head covers ${signed.treeSize} entries but ${covered.length} were listed` });
          }
          lines = covered.map((e) => JSON.stringify(e)).concat(JSON.stringify(signed));
        }
        showError(form, null);
      } catch (error) {
        showError(form, error);
        return;
      } finally {
        exportButton.disabled = false;
      }
      const text = lines.join('\n') + (lines.length ? '\n' : '');
      const url = URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' }));
      const link = h('a', { href: url, download: 'audit-log.jsonl', class: 'visually-hidden' }, 'download');
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });
    loadIntegrity();
    loadEntries();
  }

  /** Before and after of an audit entry, side by side, with its other fields. */
  function entryDetails(entry) {
    const details = entry.details || {};
    const hasChange = details && typeof details === 'object' && ('before' in details || 'after' in details);
    const parts = [];
    if (hasChange) {
      parts.push(diffTable(`Changes in entry ${entry.sequence}`, 'Before', 'After',
        prettyJson(details.before), prettyJson(details.after)));
    } else {
      parts.push(h('p', null, 'Details:'), h('pre', { class: 'mono' }, prettyJson(details)));
    }
    parts.push(h('dl', { class: 'facts' },
      h('dt', null, 'Hash'), h('dd', { class: 'mono' }, entry.hash),
      h('dt', null, 'Previous hash'), h('dd', { class: 'mono' }, entry.prevHash),
      entry.complianceStatus ? [h('dt', null, 'Compliance status'), h('dd', null, entry.complianceStatus)] : null,
      entry.clientTimestamp ? [h('dt', null, 'Client timestamp'), h('dd', null, entry.clientTimestamp)] : null));
    return h('div', null, parts);
  }

  /** JSON with sorted keys, so that equal objects print equal lines and the diff shows changes. */
  function prettyJson(value) {
    if (value === undefined || value === null) return '';
    const sortKeys = (v) => {
      if (Array.isArray(v)) return v.map(sortKeys);
      if (v && typeof v === 'object') {
        return Object.keys(v).sort().reduce((o, k) => { o[k] = sortKeys(v[k]); return o; }, {});
      }
      return v;
    };
    return JSON.stringify(sortKeys(value), null, 2);
  }

  // ---------------------------------------------------------------- API keys

  const CLIENTS_PATH = '/api/v2/oauth/clients';
  const KEYS_PATH = '/api/v2/oauth/api-keys';
  const EXPIRY_CHOICES = [['never', 'Never'], ['30', 'In 30 days'], ['90', 'In 90 days'], ['365', 'In 365 days'], ['date', 'On a date']];

  /** A key's state as the gateway judges it: revoked, expired (by the browser's clock) or active. */
  function keyState(key, now) {
    if (key.revokedAt) return 'revoked';
    if (key.expiresAt && Date.parse(key.expiresAt) <= now) return 'expired';
    return 'active';
  }

  /** RFC 3339 without milliseconds, as the gateway writes times. */
  function rfc3339(date) {
    return date.toISOString().replace(/\.\d+Z$/, 'Z');
  }

  /**
   * The admin's page of API keys: every client's keys with a Revoke button (behind a
   * confirmation), and a form that creates one and shows it once. Keys are never stored by the
   * console: the new key lives in the page until the next navigation.
   */
  async function renderApiKeys() {
    if (!can(SCOPES.admin)) {
      page('API keys', h('p', null, 'Your token lacks the admin scope, so the API keys are hidden.'));
      focusHeading();
      return;
    }
    const gen = generation;
    let clients = [];
    let keys = [];
    const clientById = new Map();

    // --- the table of keys
    const summary = h('p', { class: 'muted', role: 'status' }, 'Loading keys…');
    const tbody = h('tbody');
    const table = h('table', { class: 'api-keys' },
      h('caption', { class: 'visually-hidden' }, 'API keys of every client, newest first'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Client'),
        h('th', { scope: 'col' }, 'Key name'),
        h('th', { scope: 'col' }, 'Scopes'),
        h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Created'),
        h('th', { scope: 'col' }, 'Expires'),
        h('th', { scope: 'col' }, 'Last used'),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      tbody);
    const keysHeadingId = uid('h');
    const keysHeading = h('h2', { id: keysHeadingId, tabindex: '-1' }, 'Keys');
    const keysBox = h('div', null, summary, table);
    const keysSection = h('section', { 'aria-labelledby': keysHeadingId }, keysHeading, keysBox);

    const clientName = (id) => (clientById.get(id) ? clientById.get(id).name : id);

    const revoke = async (key, button) => {
      const ok = await confirmDialog({
        title: `Revoke the key ${key.name} of ${clientName(key.clientId)}?`,
        text: 'Requests that use it are refused (401) at once on this gateway and within about a second on every other. The key stays in this list as revoked; it cannot be used again. The revocation is audited.',
        confirm: 'Revoke key',
        opener: button,
      });
      if (!ok) return;
      button.disabled = true;
      try {
        const { data } = await api('DELETE', `${KEYS_PATH}/${encodeURIComponent(key.id)}`);
        if (gen !== generation) return;
        keys = keys.map((k) => (k.id === data.id ? data : k));
        drawKeys();
        // The key shown once is of no use any more: take it off the page.
        if (result.dataset.keyId === data.id) {
          result.replaceChildren();
          delete result.dataset.keyId;
        }
        showError(keysBox, null);
        showNotice(keysBox, `Revoked the key ${key.name} of ${clientName(key.clientId)}.`);
        keysHeading.focus();
      } catch (error) {
        if (gen !== generation) return;
        button.disabled = false;
        showError(keysBox, error);
      }
    };

    const drawKeys = () => {
      const now = Date.now();
      const newestFirst = keys.slice().sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
      tbody.replaceChildren(...newestFirst.map((k) => {
        const state = keyState(k, now);
        let action = null;
        if (state === 'active') {
          const button = h('button', { type: 'button', class: 'secondary small' }, 'Revoke', h('span', { class: 'visually-hidden' }, ` ${k.name}`));
          button.addEventListener('click', () => revoke(k, button));
          action = button;
        }
        return h('tr', { 'data-key-id': k.id },
          h('td', null, clientName(k.clientId), h('br'), h('span', { class: 'mono muted' }, k.clientId)),
          h('th', { scope: 'row' }, k.name),
          h('td', { class: 'mono key-scopes' }, k.scopes),
          h('td', null, h('span', { class: `key-state key-${state}` }, state),
            state === 'revoked' ? h('span', { class: 'muted' }, ` ${fmtTime(k.revokedAt)}`) : null),
          h('td', null, fmtTime(k.createdAt)),
          h('td', null, k.expiresAt ? fmtTime(k.expiresAt) : 'never'),
          h('td', null, k.lastUsedAt ? fmtTime(k.lastUsedAt) : 'never'),
          h('td', null, action));
      }));
      table.hidden = keys.length === 0;
      const live = keys.filter((k) => keyState(k, now) === 'active').length;
      summary.textContent = keys.length === 0 ? 'No API keys yet.' : `${keys.length} ${keys.length === 1 ? 'key' : 'keys'}, ${live} active.`;
    };

    // --- the create form
    const clientSelect = h('select', { name: 'clientId' });
    const nameInput = h('input', { type: 'text', name: 'name', spellcheck: 'false', autocomplete: 'off', maxlength: '200' });
    const scopesBox = h('div', { class: 'scope-checks' });
    const scopesSet = h('fieldset', { class: 'scopes-fieldset' }, h('legend', null, 'Scopes'), scopesBox);
    const expirySelect = h('select', { name: 'expiry' }, EXPIRY_CHOICES.map(([value, text]) => h('option', { value }, text)));
    const dateInput = h('input', { type: 'date', name: 'expiryDate' });
    const dateField = field('Expiry date', dateInput, 'The key stops working at the end of that day (UTC).');
    dateField.hidden = true;
    const createButton = h('button', { type: 'submit' }, 'Create key');
    const result = h('div', { class: 'new-key' });
    const form = h('form', { novalidate: true, class: 'api-key-form' },
      h('div', { class: 'grid2' },
        field('Client', clientSelect, 'The key acts as this client: its rate limits, its telemetry and audit entries.'),
        field('Key name', nameInput, 'What the key is for, e.g. the service that holds it (1 to 200 characters).')),
      scopesSet,
      h('div', { class: 'grid2' },
        field('Expires', expirySelect),
        dateField),
      h('div', { class: 'actions' }, createButton));
    const formBox = h('div', null,
      h('p', { class: 'muted' }, 'An API key is a long-lived bearer credential of one client, with some or all of its scopes, for a service or the OpenAI SDKs. The gateway keeps only its hash.'),
      form, result);

    const scopeBoxes = () => [...scopesBox.querySelectorAll('input[type="checkbox"]')];
    const drawScopes = () => {
      const client = clientById.get(clientSelect.value);
      const scopes = client ? client.scopes.slice().sort() : [];
      setFieldError(scopesSet, null);
      scopesBox.replaceChildren(...scopes.map((scope) => {
        const box = h('input', { type: 'checkbox', name: 'scope', value: scope, checked: true });
        box.id = uid('f');
        return h('label', { class: 'inline mono', for: box.id }, box, scope);
      }));
      if (!scopes.length) scopesBox.append(h('p', { class: 'muted' }, 'Choose a client first.'));
    };
    clientSelect.addEventListener('change', drawScopes);
    expirySelect.addEventListener('change', () => {
      dateField.hidden = expirySelect.value !== 'date';
      if (dateField.hidden) setFieldError(dateInput, null);
    });

    const showKey = (created) => {
      const keyInput = h('input', { type: 'text', readonly: true, value: created.key, class: 'mono key-value', spellcheck: 'false', autocomplete: 'off' });
      const copyButton = h('button', { type: 'button', class: 'secondary' }, 'Copy key');
      const copied = h('span', { role: 'status', class: 'muted' });
      copyButton.addEventListener('click', async () => {
        keyInput.select();
        try {
          if (navigator.clipboard && navigator.clipboard.writeText) await navigator.clipboard.writeText(created.key);
          else if (!document.execCommand('copy')) throw new Error('the browser refused');
          copied.textContent = 'Copied.';
        } catch (_) {
          copied.textContent = 'The browser did not let the page copy it: the key is selected, copy it with Ctrl+C (⌘C).';
        }
      });
      const headingId = uid('h');
      result.dataset.keyId = created.id;
      result.replaceChildren(h('div', { class: 'notice', role: 'group', 'aria-labelledby': headingId },
        h('h3', { id: headingId }, `New key ${created.name} of ${clientName(created.clientId)}`),
        h('p', null, h('strong', null, 'Copy the key now: it is shown only this once.'), ' The gateway stores only its hash, so it cannot show it again; a lost key is revoked and replaced.'),
        field('API key', keyInput),
        h('div', { class: 'inline-controls' }, copyButton, copied),
        h('p', null, 'Send it as ', h('code', null, 'Authorization: Bearer <key>'), ' on any request, or give it to the OpenAI SDKs as ',
          h('code', null, 'api_key'), ` (with base_url ${location.origin}/v1).`)));
      keyInput.focus();
      keyInput.select();
    };

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const controls = [clientSelect, nameInput, scopesSet, expirySelect, dateInput];
      for (const c of controls) setFieldError(c, null);
      showError(form, null);
      const name = nameInput.value.trim();
      const chosen = scopeBoxes().filter((b) => b.checked).map((b) => b.value);
      let firstBad = null;
      if (!clientSelect.value) { setFieldError(clientSelect, 'Choose a client.'); firstBad = firstBad || clientSelect; }
      if (!name) { setFieldError(nameInput, 'Enter a name for the key.'); firstBad = firstBad || nameInput; }
      if (clientSelect.value && chosen.length === 0) { setFieldError(scopesSet, 'Choose at least one scope.'); firstBad = firstBad || scopeBoxes()[0]; }
      let expiresAt = null;
      if (expirySelect.value === 'date') {
        if (!dateInput.value) { setFieldError(dateInput, 'Choose the day the key expires.'); firstBad = firstBad || dateInput; }
        else expiresAt = `${dateInput.value}T23:59:59Z`;
      } else if (expirySelect.value !== 'never') {
        expiresAt = rfc3339(new Date(Date.now() + Number(expirySelect.value) * 86400000));
      }
      if (firstBad) {
        firstBad.focus();
        return;
      }
      const clientId = clientSelect.value;
      createButton.disabled = true;
      try {
        const body = { name, scopes: chosen.join(' ') };
        if (expiresAt) body.expiresAt = expiresAt;
        const { data } = await api('POST', `${CLIENTS_PATH}/${encodeURIComponent(clientId)}/api-keys`, { body });
        if (gen !== generation) return;
        nameInput.value = '';
        const listed = Object.assign({}, data);
        delete listed.key;
        keys.push(listed);
        drawKeys();
        showKey(data);
      } catch (error) {
        if (gen !== generation) return;
        result.replaceChildren();
        delete result.dataset.keyId;
        const { placed, rest } = placeFieldErrors(controls, error, (f) => {
          if (f === 'name') return nameInput;
          if (f === 'clientId' || f === 'id') return clientSelect;
          if (f === 'scopes' || f.startsWith('scopes[')) return scopesSet;
          if (f === 'expiresAt') return expirySelect.value === 'date' ? dateInput : expirySelect;
          return null;
        });
        if (rest.length || placed.length === 0) showError(form, error);
        const first = placed[0];
        if (first) (first === scopesSet ? (scopeBoxes()[0] || first) : first).focus();
      } finally {
        createButton.disabled = false;
      }
    });

    page('API keys',
      section('Create a key', formBox),
      keysSection);
    focusHeading();

    try {
      const [c, k] = await Promise.all([api('GET', CLIENTS_PATH), api('GET', KEYS_PATH)]);
      if (gen !== generation) return;
      clients = (c.data.entities || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      for (const client of clients) clientById.set(client.clientId, client);
      keys = k.data.entities || [];
    } catch (error) {
      if (gen !== generation) return;
      summary.textContent = '';
      showError(keysBox, error);
      return;
    }
    // A disabled client gets no new key (the gateway answers 409), so it is not offered.
    const usable = clients.filter((client) => !client.disabled);
    clientSelect.replaceChildren(
      h('option', { value: '' }, usable.length ? 'Choose a client…' : 'No enabled client'),
      ...usable.map((client) => h('option', { value: client.clientId }, `${client.name} (${client.clientId})`)));
    drawScopes();
    drawKeys();
  }

  function renderNotFound() {
    page('Page not found', h('p', null, 'There is no such page in the console. ', h('a', { href: '#/prompts' }, 'Go to the prompts')));
    focusHeading();
  }

  // ---------------------------------------------------------------- start

  document.getElementById('sign-out').addEventListener('click', () => signOut('You are signed out.'));
  window.addEventListener('hashchange', route);
  route();
}());
