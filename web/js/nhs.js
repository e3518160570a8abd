// Patient identifiers checked in the browser exactly as the server checks them
// (src/domain/nhs_number.rs, src/domain/case.rs), so a booking form can point at a bad
// field before anything is sent. The server still decides: these only save a round trip.

/**
 * The Modulus 11 check digit of the first nine digits (weights 10..2), or null when the
 * check value is 10 (no valid number has those nine digits).
 */
export function checkDigit(firstNine) {
  const sum = firstNine.reduce((acc, d, i) => acc + d * (10 - i), 0);
  const check = 11 - (sum % 11);
  if (check === 11) return 0;
  if (check === 10) return null;
  return check;
}

/**
 * Parses an NHS number: surrounding white space trimmed, spaces inside allowed, then
 * exactly ten ASCII digits whose last is the check digit. Returns {value} (the digits
 * without spaces) or {error} (the server's own wording).
 */
export function parseNhsNumber(raw) {
  const digits = String(raw ?? "").trim().replaceAll(" ", "");
  if (!/^[0-9]{10}$/.test(digits)) return { error: "must be 10 digits" };
  const values = [...digits].map(Number);
  const check = checkDigit(values.slice(0, 9));
  if (check === null || check !== values[9]) return { error: "is not a valid NHS number (check digit)" };
  return { value: digits };
}

/** Shows an NHS number in the usual 3-3-4 grouping, e.g. "943 476 5919". */
export function formatNhsNumber(digits) {
  const s = String(digits ?? "");
  return /^[0-9]{10}$/.test(s) ? `${s.slice(0, 3)} ${s.slice(3, 6)} ${s.slice(6)}` : s;
}

/** Today's date as the server sees it (UTC), as YYYY-MM-DD. */
export const todayUtc = () => new Date().toISOString().slice(0, 10);

/**
 * A date of birth as YYYY-MM-DD: a real calendar date, not after today (UTC, as on the
 * server) and not before 1900. Returns {value} or {code, error}.
 */
export function parseDateOfBirth(raw, today = todayUtc()) {
  const s = String(raw ?? "").trim();
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(s);
  const bad = { code: "invalid_date", error: "must be a date as YYYY-MM-DD" };
  if (!m) return bad;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return bad;
  if (s > today) return { code: "date_of_birth_in_future", error: "must not be in the future" };
  if (s < "1900-01-01") return { code: "invalid_date", error: "is before 1900" };
  return { value: s };
}

/**
 * A GP practice ODS code: trimmed, upper-cased, six ASCII letters or digits starting
 * with a letter (e.g. A81001). Returns {value} or {error}.
 */
export function parseOdsCode(raw) {
  const code = String(raw ?? "").trim().toUpperCase();
  if (/^[A-Z][A-Z0-9]{5}$/.test(code)) return { value: code };
  return { error: "must be a six-character ODS practice code such as A81001" };
}

/**
 * Free text as the server's bounded_text: trimmed, not empty, at most `max` characters,
 * no control characters (new lines and tabs allowed when multiline).
 */
export function checkText(raw, max, multiline = false) {
  const text = String(raw ?? "").trim();
  if (!text) return "must not be empty";
  if ([...text].length > max) return `must be at most ${max} characters`;
  const control = multiline ? /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/ : /[\u0000-\u001f\u007f-\u009f]/;
  if (control.test(text)) return "contains control characters";
  return null;
}

/** The body regions the server accepts (BodySite::REGIONS), and the optional sides. */
export const BODY_REGIONS = [
  "neck", "upper back", "lower back", "back", "cervical spine", "thoracic spine", "lumbar spine",
  "sacroiliac joint", "chest wall", "shoulder", "shoulders", "elbow",
  "wrist", "hand", "hands", "hip", "hips", "knee", "knees", "ankle", "foot", "feet", "jaw",
  "pelvis", "widespread", "multiple sites",
];
export const BODY_SIDES = ["left", "right", "bilateral"];
