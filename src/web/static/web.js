// trackgate web pages: small conveniences only; every page works without this file.
'use strict';

document.addEventListener('submit', (event) => {
  // Destructive forms ask first (data-confirm holds the question).
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener('click', (event) => {
  // "Copy" next to a new key copies it to the clipboard.
  const button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null;
  if (!button) return;
  const source = document.getElementById(button.getAttribute('data-copy') || '');
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent || '').then(
    () => {
      button.textContent = 'Copied';
      setTimeout(() => (button.textContent = 'Copy'), 2000);
    },
    () => {
      button.textContent = 'Select and copy';
    },
  );
});

// Theme: a choice applies at once (the class on <html> the stylesheet keys on) and is saved in the
// background, with the form's own CSRF field; the Save button is for pages without this script.
// The server answers such a request 204, with no notice for the next page (src/web/pages/settings.routes.ts).
for (const form of document.querySelectorAll('form[data-theme-form]')) {
  for (const el of form.querySelectorAll('[data-without-script]')) el.hidden = true;
  const status = form.querySelector('[data-theme-status]');
  form.addEventListener('change', () => {
    const data = new FormData(form);
    const theme = String(data.get('theme') || 'system');
    const root = document.documentElement;
    root.classList.remove('theme-light', 'theme-dark', 'theme-system');
    root.classList.add('theme-' + theme);
    const scheme = document.querySelector('meta[name="color-scheme"]');
    if (scheme) scheme.setAttribute('content', theme === 'system' ? 'light dark' : theme);
    if (status) status.textContent = 'Saving…';
    fetch(form.action, {
      method: 'POST',
      body: new URLSearchParams(data),
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
    }).then(
      (r) => {
        if (status) status.textContent = r.ok ? 'Saved.' : 'Not saved (reload the page and try again).';
      },
      () => {
        if (status) status.textContent = 'Not saved (reload the page and try again).';
      },
    );
  });
}

// The invite form: a service account has no role in the team's choice (it always writes to its team),
// so the role selector is hidden while "Service" is chosen. The server ignores a role sent for a service.
for (const form of document.querySelectorAll('form[data-invite-form]')) {
  const kind = form.querySelector('select[name="kind"]');
  const role = form.querySelector('[data-role-field]');
  if (!kind || !role) continue;
  const sync = () => {
    role.hidden = kind.value === 'service';
  };
  kind.addEventListener('change', sync);
  sync();
}
