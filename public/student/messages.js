// Every rejection the API can give (README "Error codes"), in plain words with what to
// do next. `context` fills in the specifics: {typeName, date, retryAfter, requestId}.

const WHILE = (seconds) => (seconds ? `about ${seconds} second${seconds === 1 ? "" : "s"}` : "a moment");
const LATER = (seconds) => (seconds ? `in ${WHILE(seconds)}` : "in a moment");

function reference(error) {
  return error.request_id ? ` If it keeps happening, contact the school and quote reference ${error.request_id}.` : "";
}

/** Errors any request can meet. */
function common(error, context) {
  switch (error.code) {
    case "NETWORK_ERROR":
      return "We could not reach the booking service. Check your internet connection, then try again.";
    case "RATE_LIMITED":
      return `Too many requests from your connection. Wait ${WHILE(context.retryAfter)}, then try again.`;
    case "DATABASE_BUSY":
      return `The booking service is very busy right now. Try again ${LATER(context.retryAfter)}.`;
    case "DATABASE_UNAVAILABLE":
    case "HUBSPOT_UNAVAILABLE":
      return `The booking service is temporarily unavailable. Try again ${LATER(context.retryAfter)}.${reference(error)}`;
    case "CONTACT_NOT_FOUND":
    case "STUDENT_NOT_FOUND":
      return "We could not find your student record with this Student ID and email. Please log in again.";
    default:
      return `Something went wrong on our side. Please try again.${reference(error)}`;
  }
}

export function loginMessage(error, context = {}) {
  switch (error.code) {
    case "STUDENT_NOT_FOUND":
    case "CONTACT_NOT_FOUND":
      return (
        "This Student ID and email do not match our records. Check that both are typed exactly as " +
        "on your enrolment (the email must be the one the school has for you), then try again."
      );
    case "VALIDATION_ERROR":
    case "INVALID_INPUT":
      if (error.field === "student_id") return "Enter your Student ID: letters and digits only, for example DEMO001.";
      if (error.field === "email") return "Enter your email address, for example name@example.com.";
      return "Check your Student ID and email, then try again.";
    case "HUBSPOT_UNAVAILABLE":
      return `We cannot check new students right now. Try again ${LATER(context.retryAfter)}.`;
    default:
      return common(error, context);
  }
}

/** {text, field?, retry, refresh, relogin}: `retry` when trying again (same booking)
 *  may succeed; `refresh` when the sessions list should be reloaded; `field` when a
 *  form field is at fault. */
export function bookingMessage(error, context = {}) {
  const type = context.typeName || "this exam type";
  const day = context.date || "that day";
  const out = (text, extra = {}) => ({ text, retry: false, refresh: false, relogin: false, ...extra });
  switch (error.code) {
    case "EXAM_FULL":
      return out("Sorry, this session has just filled up. Choose another session from the list; seat counts refresh on their own.", {
        refresh: true,
      });
    case "DUPLICATE_BOOKING":
      return out(
        `You already have a ${type} booking on ${day}, and only one per day is allowed. To change to this ` +
          "session, cancel the other booking under My bookings first, then book this one.",
      );
    case "INSUFFICIENT_CREDITS":
      return out(
        `You have no credits left that pay for ${type}. Contact the school to add credits, then book again.`,
        { refresh: true },
      );
    case "PREREQUISITE_NOT_MET":
      return out(
        "This Mock Discussion is open only to students who attended one of its prerequisite mock exams. " +
          "Choose a discussion without prerequisites, or book and attend a prerequisite exam first.",
      );
    case "EXAM_NOT_ACTIVE":
      return out("This session is no longer open for booking. Choose another session from the list.", { refresh: true });
    case "EXAM_STARTED":
      return out("This session has already started, so it can no longer be booked. Choose a later session.", {
        refresh: true,
      });
    case "EXAM_NOT_FOUND":
      return out("This session no longer exists. The list has been refreshed: choose another session.", { refresh: true });
    case "VALIDATION_ERROR":
    case "INVALID_INPUT":
      if (error.field === "attending_location") {
        return out("Choose where you will attend this session.", { field: "attending_location" });
      }
      if (error.field === "dominant_hand") return out("Choose your dominant hand.", { field: "dominant_hand" });
      return out(`This booking could not be accepted: ${error.message}. Check the form and try again.`);
    case "IDEMPOTENCY_KEY_REUSED":
      return out("This attempt got mixed up with an earlier one. Press Confirm booking again to start afresh.");
    case "BOOKING_IN_PROGRESS":
      return out("Your booking is still being made. Press Try again in a moment: it will not book you twice.", {
        retry: true,
      });
    case "NETWORK_ERROR":
      return out(
        "We lost the connection before the booking service answered, so we cannot tell yet whether you " +
          "are booked. Press Try again: you will not be booked or charged twice.",
        { retry: true },
      );
    case "RATE_LIMITED":
    case "DATABASE_BUSY":
    case "DATABASE_UNAVAILABLE":
      return out(`${common(error, context)} Trying again will not book you twice.`, { retry: true });
    case "CONTACT_NOT_FOUND":
      return out(common(error, context), { relogin: true });
    default:
      return out(`${common(error, context)} Trying again will not book you twice.`, { retry: true });
  }
}

export function cancelMessage(error, context = {}) {
  switch (error.code) {
    case "BOOKING_NOT_CANCELLABLE":
      return "This booking can no longer be cancelled (it has been completed or already changed). Your bookings have been refreshed.";
    case "BOOKING_NOT_FOUND":
    case "NOT_FOUND":
      return "We could not find this booking any more. Your bookings have been refreshed.";
    case "NETWORK_ERROR":
      return "We lost the connection before the booking service answered. Try again: cancelling twice is harmless.";
    default:
      return common(error, context);
  }
}

export function loadMessage(error, context = {}) {
  return common(error, context);
}
