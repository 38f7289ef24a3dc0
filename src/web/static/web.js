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
